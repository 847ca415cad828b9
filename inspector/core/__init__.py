"""The ground floor of the engine: the values that flow (``types``), the configuration tree, the errors a
user can act on, the stage protocols (``ports``), and small services every room uses (files, clock,
the data folder, the sealing key, users and roles, the plant's day, alarms). It imports no other room."""
