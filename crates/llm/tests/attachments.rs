//! File and PDF content parts: OpenAI `file` parts, Anthropic `document` blocks, and a typed
//! `llm.unsupported_content` error (before anything is sent) where a provider cannot take a part.
#![cfg(all(feature = "openai", feature = "anthropic"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Reply, TestServer, data, typed_events};
use power_loop_contracts::{
    Content, ContentPart, ErrorCode, LlmRequest, LlmService, Message, ProviderCapabilities,
};
use power_loop_llm::{AnthropicConfig, AnthropicLlm, CapabilityOverrides, OpenAiConfig, OpenAiLlm};
use serde_json::json;

const PDF_B64: &str = "JVBERi0xLjQKJcfsj6IK";

fn openai(server: &TestServer, model: &str) -> OpenAiLlm {
    OpenAiLlm::new(OpenAiConfig::new(format!("{}/v1", server.base), "k", model)).unwrap()
}

fn anthropic(server: &TestServer) -> AnthropicLlm {
    AnthropicLlm::new(AnthropicConfig::new(&server.base, "k", "claude-sonnet-4-5")).unwrap()
}

fn openai_ok() -> Reply {
    Reply::sse_parts(&[data(&[
        r#"{"choices":[{"delta":{"content":"a summary"},"finish_reason":"stop"}]}"#,
        "[DONE]",
    ])])
}

fn anthropic_ok() -> Reply {
    Reply::sse_parts(&[typed_events(&[
        r#"{"type":"message_start","message":{"id":"m","model":"c","usage":{"input_tokens":1,"output_tokens":1}}}"#,
        r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":"a summary"}}"#,
        r#"{"type":"message_stop"}"#,
    ])])
}

fn user_parts(parts: Vec<ContentPart>) -> LlmRequest {
    LlmRequest::new(vec![Message::user(Content::Parts(parts))])
}

#[test]
fn file_parts_have_the_openai_wire_shape() {
    let p = ContentPart::pdf_base64(PDF_B64, "report.pdf");
    let v = serde_json::to_value(&p).unwrap();
    assert_eq!(
        v,
        json!({"type": "file", "file": {"file_data": format!("data:application/pdf;base64,{PDF_B64}"), "filename": "report.pdf"}})
    );
    assert_eq!(serde_json::from_value::<ContentPart>(v).unwrap(), p);
    let ContentPart::File { file } = &p else {
        panic!("not a file part")
    };
    assert_eq!(file.media_type(), Some("application/pdf"));
    assert_eq!(file.base64_data(), Some(PDF_B64));
    // Files are not text: the text of the content skips them.
    assert_eq!(
        Content::Parts(vec![ContentPart::text("a"), p]).to_text(),
        "a"
    );
}

#[tokio::test]
async fn openai_sends_pdf_file_data_and_file_ids_as_file_parts() {
    let server = TestServer::start(vec![openai_ok()]).await;
    let llm = openai(&server, "gpt-4o");
    assert!(llm.capabilities().supports_pdf_input);
    let req = user_parts(vec![
        ContentPart::text("Summarize these."),
        ContentPart::pdf_base64(PDF_B64, "report.pdf"),
        ContentPart::file_id("file-abc123"),
    ]);
    let r = llm.complete(req).await.unwrap();
    assert_eq!(r.raw_text, "a summary");
    assert_eq!(
        server.requests()[0].json()["messages"],
        json!([{"role": "user", "content": [
            {"type": "text", "text": "Summarize these."},
            {"type": "file", "file": {"file_data": format!("data:application/pdf;base64,{PDF_B64}"), "filename": "report.pdf"}},
            {"type": "file", "file": {"file_id": "file-abc123"}}
        ]}])
    );
}

#[tokio::test]
async fn openai_refuses_what_it_cannot_take_before_sending() {
    let server = TestServer::start(vec![openai_ok()]).await;
    let plain = openai(&server, "llama3.1");
    let gpt = openai(&server, "gpt-4o");
    let pdf = || ContentPart::pdf_base64(PDF_B64, "r.pdf");
    let cases: Vec<(&OpenAiLlm, LlmRequest, &str)> = vec![
        // A model not flagged for PDF input.
        (&plain, user_parts(vec![pdf()]), "not flagged for PDF"),
        // Not a PDF.
        (
            &gpt,
            user_parts(vec![ContentPart::file_data(
                "data:text/csv;base64,YSxiCg==",
                Some("t.csv".into()),
            )]),
            "text/csv",
        ),
        // Chat completions fetch no URLs.
        (
            &gpt,
            user_parts(vec![ContentPart::file_url("https://x.test/r.pdf", None)]),
            "no file URLs",
        ),
        // Files only in user messages.
        (
            &gpt,
            LlmRequest::new(vec![
                Message::user("hi"),
                Message {
                    content: Some(Content::Parts(vec![pdf()])),
                    ..Message::assistant("")
                },
            ]),
            "user messages only",
        ),
    ];
    for (llm, req, needle) in cases {
        let e = llm.complete(req).await.unwrap_err();
        assert_eq!(e.code(), ErrorCode::LlmUnsupportedContent, "{e}");
        assert!(e.message().contains(needle), "{needle}: {e}");
        assert_eq!(e.detail("part_type"), Some(&json!("file")));
    }
    assert_eq!(server.count(), 0, "nothing was sent");

    // A capability override opens PDF input for a compatible server that takes it.
    let mut o = CapabilityOverrides::default();
    o.supports_pdf_input = Some(true);
    let llm = OpenAiLlm::new(
        OpenAiConfig::new(format!("{}/v1", server.base), "k", "llama3.1")
            .with_capability_overrides(o),
    )
    .unwrap();
    let body = llm.request_body(&user_parts(vec![pdf()])).unwrap();
    assert_eq!(body["messages"][0]["content"][0]["type"], "file");
    assert_eq!(
        body["messages"][0]["content"][0]["file"]["filename"],
        "r.pdf"
    );
}

#[tokio::test]
async fn anthropic_sends_pdfs_as_document_blocks() {
    let server = TestServer::start(vec![anthropic_ok()]).await;
    let llm = anthropic(&server);
    let caps: ProviderCapabilities = llm.capabilities();
    assert!(caps.supports_pdf_input);
    let req = user_parts(vec![
        ContentPart::text("Compare them."),
        ContentPart::pdf_base64(PDF_B64, "a.pdf"),
        ContentPart::file_url("https://example.com/b.pdf", None),
    ]);
    let r = llm.complete(req).await.unwrap();
    assert_eq!(r.raw_text, "a summary");
    assert_eq!(
        server.requests()[0].json()["messages"],
        json!([{"role": "user", "content": [
            {"type": "text", "text": "Compare them."},
            {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": PDF_B64}, "title": "a.pdf"},
            {"type": "document", "source": {"type": "url", "url": "https://example.com/b.pdf"}}
        ]}])
    );
}

#[tokio::test]
async fn anthropic_refuses_what_it_cannot_take_before_sending() {
    let server = TestServer::start(vec![anthropic_ok()]).await;
    let llm = anthropic(&server);
    let cases = vec![
        (
            user_parts(vec![ContentPart::file_data(
                "data:application/vnd.openxmlformats-officedocument.wordprocessingml.document;base64,UEsDBA==",
                None,
            )]),
            "only PDF",
        ),
        (
            user_parts(vec![ContentPart::file_id("file_011")]),
            "Files API",
        ),
        (
            user_parts(vec![ContentPart::file_data(
                "data:application/pdf,raw",
                None,
            )]),
            "base64",
        ),
        (
            LlmRequest::new(vec![
                Message::user("hi"),
                Message {
                    content: Some(Content::Parts(vec![ContentPart::pdf_base64(PDF_B64, "x")])),
                    ..Message::assistant("")
                },
            ]),
            "user messages only",
        ),
    ];
    for (req, needle) in cases {
        let e = llm.complete(req).await.unwrap_err();
        assert_eq!(e.code(), ErrorCode::LlmUnsupportedContent, "{e}");
        assert!(e.message().contains(needle), "{needle}: {e}");
        assert!(!e.code().is_retryable());
    }
    assert_eq!(server.count(), 0, "nothing was sent");
}
