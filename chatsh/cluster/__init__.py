"""A chat server spanning machines, on a Redis or Valkey engine."""
