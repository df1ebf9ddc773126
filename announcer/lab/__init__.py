"""The namespace lab: a real FRR router, load-balancer hosts with ExaBGP and this plugin."""
