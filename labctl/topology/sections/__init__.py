"""One reader per top-level section of a topology file: raw YAML data -> the model's values.

Each module owns its section's keys (``*_KEYS``, checked against schema.json by the tests), its
format rules and its defaults. A reader takes the file's ``Checker``, records every problem it finds
and returns the section's value, or None if anything in it was wrong. Rules that relate several
sections (addresses inside the subnet, names and ports used twice) are in ``crosscheck``.
"""
