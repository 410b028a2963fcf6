//! The standing attack suite: one test per attack a review tried, named for the attack, so that the next review
//! starts from it. docs/security.md's "Attacks tried" lists each with what stops it.

mod confirm;
mod edge;
mod limits;
mod local_store;
mod resumable;
