"""celeris.execution: validated, idempotent order entry; the order lifecycle; paper and live venues."""
