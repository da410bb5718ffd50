"""The load stage: YAML bytes -> plain data, fast, with locations on demand."""
