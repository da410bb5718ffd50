"""Drivers read and write one network element. See `base.Driver`."""
