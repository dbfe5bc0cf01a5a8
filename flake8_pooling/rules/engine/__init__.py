"""Engine rules (POL1xx): the options an engine is created with, against where it connects."""
