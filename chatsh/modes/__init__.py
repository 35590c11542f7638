"""Front ends: one module per mode, each returning an exit status."""
