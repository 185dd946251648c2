//! Leader election for the account sync: one replica at a time, through a Kubernetes Lease.
