//! The request and response bodies of DraftStore's REST API under `/api/v1`, shared by the server (which parses
//! requests and writes responses with them) and the client (which does the reverse), so that neither re-declares
//! the other's fields. Requests refuse unknown fields; optional request fields are left out when `None`.

mod bodies;
pub mod integer;
mod rules;
#[cfg(feature = "openapi")]
pub mod schema;

pub use bodies::*;
pub use rules::*;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_code_parses_back() {
        for error_type in ErrorType::ALL {
            assert_eq!(error_type.as_str().parse(), Ok(error_type));
            let json = serde_json::to_value(error_type).expect("serializes");
            assert_eq!(json, serde_json::json!(error_type.as_str()));
        }
        assert_eq!("SOMETHING_NEW".parse::<ErrorType>(), Err(()));
    }

    #[test]
    fn requests_leave_out_what_is_not_set() {
        let request = UploadUrlRequest { object_name: "a.txt".into(), ..Default::default() };
        assert_eq!(serde_json::to_value(&request).expect("json"), serde_json::json!({"object_name": "a.txt"}));
    }
}
