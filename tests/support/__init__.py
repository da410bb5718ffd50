"""Test-side tools shared by several test packages."""
