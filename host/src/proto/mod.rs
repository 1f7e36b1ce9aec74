//! The protocol toolkit of the system plughost descends from: message model
//! and factory, the raw protocol the service tracker speaks, addresses, uids,
//! codes and headers. (Being built: see issue 3.)
