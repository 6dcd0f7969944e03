"""The only layer that talks to a Docker engine (through the Docker SDK). See docs/runtime.md.

``images``: the base, node and client images, tagged by a hash of their inputs.
``engine``: the connection, object names and labels (``labctl.lab``, ``labctl.role``), exec helpers.
``network``: the lab's internal LAN. ``disk``: the shared disk (sparse image, loop devices, mkfs).
``serial``: the serial cable (relay container, node ends). ``nodes``: node and client containers.
``lab``: ``up`` as one transaction, ``down`` by labels, ``Lab``: a handle on a lab that exists.
"""
