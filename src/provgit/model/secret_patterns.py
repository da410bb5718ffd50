"""The patterns of secret references, without pydantic: `provgit.secrets`
checks key files with them on paths that build no model (status, a no-op
reconcile), and `model.common.SecretRef` validates with the same."""

# A secret file is absolute or in the home directory: a relative path would be
# a file inside the config repository. The JSON Schema says the same.
SECRET_FILE_PATTERN = r"^(/|~/)"
# A name in a key file (`{file: PATH, key: NAME}`): what a `NAME=value` line starts with.
SECRET_KEY_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.-]*$"
