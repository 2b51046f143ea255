"""Sessions, CDRs and drivers' tokens arrive with the charging and billing issues."""
