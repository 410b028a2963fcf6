//! Confirm and delete: a confirm promotes exactly the bytes it checked, and a delete removes only what was
//! decided.
