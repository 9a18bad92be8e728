"""Generated from protos/ponder/v1 by scripts/gen_protos.py. Do not edit."""
