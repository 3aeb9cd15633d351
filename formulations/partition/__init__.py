"""Graph partition into fused subgraphs with on-chip memory (Cocco)."""
