//! The run folder's timm-style name.

/// `YYYYMMDD-HHMMSS-model-size` (UTC), timm's experiment name (the model as
/// [`safe_model_name`] writes it).
pub fn experiment_name(model: &str, img_size: usize) -> String {
    let model = safe_model_name(model);
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}{m:02}{d:02}-{:02}{:02}{:02}-{model}-{img_size}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// timm's `safe_model_name`: the name without its `hf-hub:` / `local-dir:` prefix, every
/// character but letters and digits replaced by `_`, trailing `_` dropped.
fn safe_model_name(model: &str) -> String {
    let id = kiln_nn::parse_model_name(model).map_or(model, |(_, id)| id);
    let safe: String = id
        .chars()
        .map(|c| if c.is_alphanumeric() { c } else { '_' })
        .collect();
    safe.trim_end_matches('_').to_string()
}

/// Gregorian (year, month, day) of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    #[test]
    fn civil_dates() {
        assert_eq!(super::civil_from_days(0), (1970, 1, 1));
        assert_eq!(super::civil_from_days(20_414), (2025, 11, 22));
    }

    #[test]
    fn model_names_are_made_safe_as_timm_does() {
        assert_eq!(super::safe_model_name("resnet50"), "resnet50");
        assert_eq!(
            super::safe_model_name("resnet50.a1_in1k"),
            "resnet50_a1_in1k"
        );
        assert_eq!(
            super::safe_model_name("hf-hub:timm/vit_tiny_patch16_224.augreg_in21k"),
            "timm_vit_tiny_patch16_224_augreg_in21k"
        );
        assert_eq!(super::safe_model_name("local-dir:/m/x/"), "_m_x");
    }
}
