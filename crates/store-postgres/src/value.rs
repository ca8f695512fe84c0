//! Binding [`Value`]s as statement parameters and decoding result cells back into [`Value`]s.
//!
//! Binding looks at the parameter type the server inferred: an integer goes out as `INT8`, `INT4`
//! or `INT2` (range-checked), `BOOL` or decimal text; text goes out as text or JSON; NULL is a
//! typed NULL. Decoding maps `INT2/INT4/INT8/OID` → `Int`, text-like types → `Text`, `BOOL` →
//! `Int 0/1`, `VOID` → `Null`, integral `NUMERIC` (e.g. `SUM(bigint)`) → `Int`, NULL → `Null`.

use std::error::Error as StdError;
use std::fmt::Write as _;

use bytes::{BufMut, BytesMut};
use power_loop_store::db::Value;
use tokio_postgres::types::{FromSql, IsNull, ToSql, Type, to_sql_checked};

type BoxDynError = Box<dyn StdError + Sync + Send>;

/// One parameter value, bound according to the server-inferred parameter type.
#[derive(Debug)]
pub(crate) struct Param<'a>(pub(crate) &'a Value);

fn is_text_like(ty: &Type) -> bool {
    matches!(
        *ty,
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN
    )
}

impl ToSql for Param<'_> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxDynError> {
        match self.0 {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(v) => match *ty {
                Type::INT8 => v.to_sql(ty, out),
                Type::INT4 => i32::try_from(*v)
                    .map_err(|_| format!("integer {v} does not fit the INT4 parameter"))?
                    .to_sql(ty, out),
                Type::INT2 => i16::try_from(*v)
                    .map_err(|_| format!("integer {v} does not fit the INT2 parameter"))?
                    .to_sql(ty, out),
                Type::OID => u32::try_from(*v)
                    .map_err(|_| format!("integer {v} does not fit the OID parameter"))?
                    .to_sql(ty, out),
                Type::BOOL => (*v != 0).to_sql(ty, out),
                Type::JSON | Type::JSONB => {
                    if *ty == Type::JSONB {
                        out.put_u8(1);
                    }
                    out.put_slice(v.to_string().as_bytes());
                    Ok(IsNull::No)
                }
                _ if is_text_like(ty) => {
                    out.put_slice(v.to_string().as_bytes());
                    Ok(IsNull::No)
                }
                _ => Err(format!("cannot bind an integer to a parameter of type {ty}").into()),
            },
            Value::Text(s) => match *ty {
                Type::JSON => {
                    out.put_slice(s.as_bytes());
                    Ok(IsNull::No)
                }
                Type::JSONB => {
                    out.put_u8(1);
                    out.put_slice(s.as_bytes());
                    Ok(IsNull::No)
                }
                _ if is_text_like(ty) => {
                    out.put_slice(s.as_bytes());
                    Ok(IsNull::No)
                }
                _ => Err(format!("cannot bind text to a parameter of type {ty}").into()),
            },
        }
    }

    fn accepts(_ty: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// One decoded result cell.
#[derive(Debug)]
pub(crate) struct Cell(pub(crate) Value);

impl<'a> FromSql<'a> for Cell {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxDynError> {
        let v = match *ty {
            Type::INT8 => Value::Int(i64::from_sql(ty, raw)?),
            Type::INT4 => Value::Int(i64::from(i32::from_sql(ty, raw)?)),
            Type::INT2 => Value::Int(i64::from(i16::from_sql(ty, raw)?)),
            Type::OID => Value::Int(i64::from(u32::from_sql(ty, raw)?)),
            Type::BOOL => Value::Int(i64::from(bool::from_sql(ty, raw)?)),
            Type::NUMERIC => decode_numeric(raw)?,
            // Functions such as pg_advisory_xact_lock return `void`.
            Type::VOID => Value::Null,
            Type::FLOAT8 => float_value(f64::from_sql(ty, raw)?),
            Type::FLOAT4 => float_value(f64::from(f32::from_sql(ty, raw)?)),
            Type::JSON => Value::Text(std::str::from_utf8(raw)?.to_owned()),
            Type::JSONB => match raw.split_first() {
                Some((1, rest)) => Value::Text(std::str::from_utf8(rest)?.to_owned()),
                _ => return Err("unsupported JSONB encoding version".into()),
            },
            _ if is_text_like(ty) => Value::Text(std::str::from_utf8(raw)?.to_owned()),
            _ => {
                return Err(format!(
                    "column type {ty} is not supported by the store (only integers, text, bool and \
                     integral numerics)"
                )
                .into());
            }
        };
        Ok(Cell(v))
    }

    fn from_sql_null(_ty: &Type) -> Result<Self, BoxDynError> {
        Ok(Cell(Value::Null))
    }

    fn accepts(_ty: &Type) -> bool {
        true
    }
}

/// An integral float becomes `Int`; anything else its decimal text.
fn float_value(f: f64) -> Value {
    // i64::MIN..=i64::MAX as f64 bounds, checked before the (then lossless) cast.
    if f.is_finite()
        && f.fract() == 0.0
        && (-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&f)
    {
        #[allow(clippy::cast_possible_truncation)]
        let i = f as i64;
        Value::Int(i)
    } else {
        Value::Text(f.to_string())
    }
}

fn read_u16(raw: &[u8], at: usize) -> Result<u16, BoxDynError> {
    raw.get(at..at + 2)
        .map(|b| u16::from_be_bytes([b[0], b[1]]))
        .ok_or_else(|| "truncated NUMERIC value".into())
}

/// Decodes PostgreSQL's binary NUMERIC: `Int` when integral and in range, decimal text otherwise.
pub(crate) fn decode_numeric(raw: &[u8]) -> Result<Value, BoxDynError> {
    let ndigits = usize::from(read_u16(raw, 0)?);
    let weight = i32::from(i16::from_be_bytes(read_u16(raw, 2)?.to_be_bytes()));
    let sign = read_u16(raw, 4)?;
    let dscale = usize::from(read_u16(raw, 6)?);
    let mut digits = Vec::with_capacity(ndigits);
    for i in 0..ndigits {
        digits.push(read_u16(raw, 8 + 2 * i)?);
    }
    match sign {
        0x0000 | 0x4000 => {}
        0xC000 => return Ok(Value::Text("NaN".to_owned())),
        0xD000 => return Ok(Value::Text("Infinity".to_owned())),
        0xF000 => return Ok(Value::Text("-Infinity".to_owned())),
        _ => return Err("invalid NUMERIC sign".into()),
    }
    let digit = |i: i32| -> u16 {
        usize::try_from(i)
            .ok()
            .and_then(|i| digits.get(i).copied())
            .unwrap_or(0)
    };
    let mut text = String::new();
    if sign == 0x4000 {
        text.push('-');
    }
    if weight < 0 {
        text.push('0');
    } else {
        for i in 0..=weight {
            // Writing to a String cannot fail.
            let _ = if i == 0 {
                write!(text, "{}", digit(i))
            } else {
                write!(text, "{:04}", digit(i))
            };
        }
    }
    if dscale > 0 {
        let mut frac = String::with_capacity(dscale + 4);
        let mut i = weight + 1;
        while frac.len() < dscale {
            let _ = write!(frac, "{:04}", digit(i));
            i += 1;
        }
        frac.truncate(dscale);
        if frac.bytes().any(|b| b != b'0') {
            text.push('.');
            text.push_str(&frac);
            return Ok(Value::Text(text));
        }
    }
    Ok(match text.parse::<i64>() {
        Ok(i) => Value::Int(i),
        Err(_) => Value::Text(if text == "-0" { "0".to_owned() } else { text }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric(ndigits: u16, weight: i16, sign: u16, dscale: u16, digits: &[u16]) -> Vec<u8> {
        let mut v = Vec::new();
        for x in [
            ndigits,
            u16::from_be_bytes(weight.to_be_bytes()),
            sign,
            dscale,
        ] {
            v.extend_from_slice(&x.to_be_bytes());
        }
        for d in digits {
            v.extend_from_slice(&d.to_be_bytes());
        }
        v
    }

    #[test]
    fn numeric_decodes_integers_and_decimals() {
        // 123456789 = [1, 2345, 6789], weight 2
        assert_eq!(
            decode_numeric(&numeric(3, 2, 0, 0, &[1, 2345, 6789])).unwrap(),
            Value::Int(123_456_789)
        );
        // -42
        assert_eq!(
            decode_numeric(&numeric(1, 0, 0x4000, 0, &[42])).unwrap(),
            Value::Int(-42)
        );
        // 0
        assert_eq!(
            decode_numeric(&numeric(0, 0, 0, 0, &[])).unwrap(),
            Value::Int(0)
        );
        // 10000 = [1], weight 1 (trailing zero groups omitted)
        assert_eq!(
            decode_numeric(&numeric(1, 1, 0, 0, &[1])).unwrap(),
            Value::Int(10_000)
        );
        // 1.50 (dscale 2) = [1, 5000], weight 0
        assert_eq!(
            decode_numeric(&numeric(2, 0, 0, 2, &[1, 5000])).unwrap(),
            Value::Text("1.50".into())
        );
        // 0.0001 = [1], weight -1, dscale 4
        assert_eq!(
            decode_numeric(&numeric(1, -1, 0, 4, &[1])).unwrap(),
            Value::Text("0.0001".into())
        );
        // 7.00 is integral
        assert_eq!(
            decode_numeric(&numeric(1, 0, 0, 2, &[7])).unwrap(),
            Value::Int(7)
        );
        assert!(decode_numeric(&[0, 1]).is_err());
    }

    #[test]
    fn floats_map_to_ints_when_integral() {
        assert_eq!(float_value(3.0), Value::Int(3));
        assert_eq!(float_value(2.5), Value::Text("2.5".into()));
        assert_eq!(float_value(f64::NAN), Value::Text("NaN".into()));
    }
}
