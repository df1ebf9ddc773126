"""The ExaBGP edge: the pipe (commands out, acks and events in) and the reconciler that makes
ExaBGP hold the desired route set (exabgp.conf is rendered in announcer/render/)."""
