"""Training: QLoRA over a materialized mix, run registry and exposure ledger."""
