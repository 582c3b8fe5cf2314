//! The proxy as a process and a TCP server: health, metrics, errors,
//! shutdown, and the edge (slow and idle connections, the connection cap).

mod edge;
mod server;
