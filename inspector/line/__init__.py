"""The line, protocol-free (``desk``: states, results, the trigger desk; ``ports``: ``LineInput`` and
``LineOutput``), and one adapter per protocol (``mqtt``, ``modbus``, ``opcua``): each the only module that
imports its protocol library."""
