"""The only layer that talks to a Docker engine (through the Docker SDK).

``images``: the base, node and client images, tagged by a hash of their inputs.
"""
