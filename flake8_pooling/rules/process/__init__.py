"""Process rules (POL3xx): forked workers that inherit engines, the hooks that dispose them, and
pools sized against the process model."""
