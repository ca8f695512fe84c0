//! [`CapabilityOverrides`]: per-field overrides of the capabilities a provider detects (a leaf
//! module: the config and the providers both read it).

use power_loop_contracts::ProviderCapabilities;

/// Per-field overrides of detected capabilities (`None` keeps the detected value).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CapabilityOverrides {
    /// Image content parts.
    pub supports_image_input: Option<bool>,
    /// `data:` image URLs.
    pub supports_data_url: Option<bool>,
    /// PDF documents as `file` content parts.
    pub supports_pdf_input: Option<bool>,
    /// Tool calling.
    pub supports_tools: Option<bool>,
    /// Streaming.
    pub supports_stream: Option<bool>,
}

impl CapabilityOverrides {
    /// Applies the set fields over `caps`.
    pub fn apply(&self, mut caps: ProviderCapabilities) -> ProviderCapabilities {
        if let Some(v) = self.supports_image_input {
            caps.supports_image_input = v;
        }
        if let Some(v) = self.supports_data_url {
            caps.supports_data_url = v;
        }
        if let Some(v) = self.supports_pdf_input {
            caps.supports_pdf_input = v;
        }
        if let Some(v) = self.supports_tools {
            caps.supports_tools = v;
        }
        if let Some(v) = self.supports_stream {
            caps.supports_stream = v;
        }
        caps
    }
}
