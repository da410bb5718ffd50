"""provgit: telephony network provisioning from git."""

__version__ = "0.1.0"
