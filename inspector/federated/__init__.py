"""Stations that learn together without sharing a picture: federated fine-tuning with Flower.

``local`` (a station's own parts, the network, a bounded fine-tune, mAP50 on its held-out parts), ``flower``
(the only module importing ``flwr``: the server's FedAvg and a station's client) and ``result`` (the base the
federation starts from and the model with its card it leaves). Only weights and figures leave a station.
"""
