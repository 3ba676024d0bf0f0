"""Services: the business rules, one class per resource, each method one transaction.

They may import the repositories and the shared ground below them; never the HTTP layer
(`api`) or the pipeline's processes."""
