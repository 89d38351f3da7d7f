//! The notification service over HTTP, fed by events on an in-process bus.

mod helpers;
mod receiver;
mod restart;
mod sse;
mod webhooks;
