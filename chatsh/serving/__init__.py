"""What running ``chatsh serve`` for real takes beside the protocol: TLS, who may
connect, counters and metrics, machine-readable logs."""
