//! Kubernetes-style quantities given as text (`"500m"`, `"512Mi"`, `"2Gi"`): a workload's
//! resources and a byte size such as `[prometheus] max_answer_size` are written the same way,
//! so values can be copied from manifests.

/// Why a quantity given as text was refused; each message names the text.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QuantityError {
    /// A quantity with a suffix that is not a Kubernetes unit.
    #[error("'{text}' has an unknown unit '{unit}' (use m, k, M, G, T, Ki, Mi, Gi, Ti)")]
    UnknownUnit {
        /// The text as given.
        text: String,
        /// The suffix not understood.
        unit: String,
    },
    /// The number part of a quantity is not a number.
    #[error("'{text}' is not a quantity like 0.5, 500m, 512Mi or 2Gi")]
    NotAQuantity {
        /// The text as given.
        text: String,
    },
    /// A quantity that is negative, infinite or NaN.
    #[error("'{text}' must be a finite number ≥ 0")]
    QuantityRange {
        /// The text as given.
        text: String,
    },
}

/// Parses a Kubernetes-style quantity: `0.5`, `500m`, `2k`, `512Mi`, `2Gi`, `1G`.
pub fn parse_quantity(text: &str) -> Result<f64, QuantityError> {
    let t = text.trim();
    let split = t
        .find(|c: char| c.is_ascii_alphabetic() && c != 'e' && c != 'E')
        .unwrap_or(t.len());
    let (num, suffix) = t.split_at(split);
    let mult = match suffix {
        "" => 1.0,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "Ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024.0 * 1024.0 * 1024.0,
        "Ti" => 1024.0_f64.powi(4),
        _ => {
            return Err(QuantityError::UnknownUnit {
                text: text.to_string(),
                unit: suffix.to_string(),
            })
        }
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| QuantityError::NotAQuantity {
            text: text.to_string(),
        })?;
    if !v.is_finite() || v < 0.0 {
        return Err(QuantityError::QuantityRange {
            text: text.to_string(),
        });
    }
    Ok(v * mult)
}
