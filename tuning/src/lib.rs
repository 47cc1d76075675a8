//! treehouse tuning: a load generator and benchmarks that measure a treehouse server and
//! the machine it runs on.

pub mod compare;
pub mod load;
