"""Model pools: one Ray Serve application per pool, a backend behind one interface."""
