//! kluis-server: stores only ciphertext, over HTTPS.
//!
//! **Architecture invariant:** this is the only crate that knows about HTTP and sled. No code
//! path here can decrypt a record: the server holds no vault key and parses no envelope.
#![warn(missing_docs)]

pub mod accounts;
pub mod admin;
pub mod api;
pub mod backup;
pub mod clock;
pub mod config;
pub mod http;
pub mod mail;
pub mod pause;
pub mod private_file;
pub mod server_key;
pub mod sms;
pub mod store;
pub mod tls;
pub mod web;
