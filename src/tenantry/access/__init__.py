"""Access control: roles per tenant and the policy engine."""
