//! The proxy as a process and a TCP server: health, metrics, errors,
//! shutdown, the edge (slow and idle connections, the connection cap), and
//! reads from a streaming replica.

mod edge;
mod replicas;
mod server;
