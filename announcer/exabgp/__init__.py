"""The ExaBGP edge: the pipe (commands out, acks and events in), the reconciler that makes
ExaBGP hold the desired route set, and the exabgp.conf renderer."""
