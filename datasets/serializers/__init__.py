"""Input (`…In`) and output (`…Out`) shapes of the knowledge-base endpoints, one module per resource."""
