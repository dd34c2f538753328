//! The tools the conformance fixture lists, with their input schemas
//! (names and schemas as the suite's scenarios check them).

use std::sync::Arc;

use rmcp::model::{JsonObject, Tool};
use serde_json::{Value, json};

fn schema(value: Value) -> Arc<JsonObject> {
    match value {
        Value::Object(map) => Arc::new(map),
        other => panic!("a schema must be a JSON object, not {other}"),
    }
}

fn no_arguments() -> Arc<JsonObject> {
    schema(json!({ "type": "object", "properties": {} }))
}

pub(super) fn tools() -> Vec<Tool> {
    vec![
        Tool::new(
            "test_simple_text",
            "Returns one text block.",
            no_arguments(),
        ),
        Tool::new(
            "test_image_content",
            "Returns an image block (a 1x1 PNG).",
            no_arguments(),
        ),
        Tool::new(
            "test_audio_content",
            "Returns an audio block (audio/wav).",
            no_arguments(),
        ),
        Tool::new(
            "test_embedded_resource",
            "Returns an embedded text resource.",
            no_arguments(),
        ),
        Tool::new(
            "test_multiple_content_types",
            "Returns a text, an image and an embedded JSON resource.",
            no_arguments(),
        ),
        Tool::new(
            "test_tool_with_logging",
            "Sends three info log messages, 50 ms apart, then returns.",
            no_arguments(),
        ),
        Tool::new(
            "test_tool_with_progress",
            "Reports progress 0, 50 and 100 of 100, 50 ms apart, when the call has a progress token.",
            no_arguments(),
        ),
        Tool::new(
            "test_error_handling",
            "Always fails with a tool error (isError: true).",
            no_arguments(),
        ),
        Tool::new(
            "test_sampling",
            "Asks the client's model (sampling/createMessage) and returns its answer.",
            schema(json!({
                "type": "object",
                "properties": {
                    "prompt": { "type": "string", "description": "The prompt to send to the model" }
                },
                "required": ["prompt"]
            })),
        ),
        Tool::new(
            "test_elicitation",
            "Asks the user (elicitation/create) for a username and an email address.",
            schema(json!({
                "type": "object",
                "properties": {
                    "message": { "type": "string", "description": "The message to show the user" }
                },
                "required": ["message"]
            })),
        ),
        Tool::new(
            "test_elicitation_sep1034_defaults",
            "Asks the user with a form whose fields all have default values (SEP-1034).",
            no_arguments(),
        ),
        Tool::new(
            "test_elicitation_sep1330_enums",
            "Asks the user with a form of the five enum field kinds (SEP-1330).",
            no_arguments(),
        ),
        Tool::new(
            "json_schema_2020_12_tool",
            "Tool with JSON Schema 2020-12 features",
            schema(json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "type": "object",
                "$defs": {
                    "address": {
                        "type": "object",
                        "properties": {
                            "street": { "type": "string" },
                            "city": { "type": "string" }
                        }
                    }
                },
                "properties": {
                    "name": { "type": "string" },
                    "address": { "$ref": "#/$defs/address" }
                },
                "additionalProperties": false
            })),
        ),
    ]
}

pub(super) fn sep1034_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "name": { "type": "string", "description": "User name", "default": "John Doe" },
            "age": { "type": "integer", "description": "User age", "default": 30 },
            "score": { "type": "number", "description": "User score", "default": 95.5 },
            "status": {
                "type": "string",
                "description": "User status",
                "enum": ["active", "inactive", "pending"],
                "default": "active"
            },
            "verified": { "type": "boolean", "description": "Verification status", "default": true }
        },
        "required": []
    })
}

pub(super) fn sep1330_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "untitledSingle": {
                "type": "string",
                "description": "Untitled single-select",
                "enum": ["option1", "option2", "option3"]
            },
            "titledSingle": {
                "type": "string",
                "description": "Titled single-select",
                "oneOf": [
                    { "const": "value1", "title": "First Option" },
                    { "const": "value2", "title": "Second Option" },
                    { "const": "value3", "title": "Third Option" }
                ]
            },
            "legacyEnum": {
                "type": "string",
                "description": "Legacy titled enum",
                "enum": ["opt1", "opt2", "opt3"],
                "enumNames": ["Option One", "Option Two", "Option Three"]
            },
            "untitledMulti": {
                "type": "array",
                "description": "Untitled multi-select",
                "items": { "type": "string", "enum": ["option1", "option2", "option3"] }
            },
            "titledMulti": {
                "type": "array",
                "description": "Titled multi-select",
                "items": {
                    "anyOf": [
                        { "const": "value1", "title": "First Choice" },
                        { "const": "value2", "title": "Second Choice" },
                        { "const": "value3", "title": "Third Choice" }
                    ]
                }
            }
        },
        "required": []
    })
}
