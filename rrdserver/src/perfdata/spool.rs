//! The line formats of perfdata spool files, as Nagios-family monitors
//! write them:
//!
//! * PNP4Nagios bulk mode: tab-separated `KEY::VALUE` fields in any order
//!   (`DATATYPE::SERVICEPERFDATA` or `HOSTPERFDATA`, `TIMET::`,
//!   `HOSTNAME::`, `SERVICEDESC::`, `SERVICEPERFDATA::` or `HOSTPERFDATA::`;
//!   other keys are ignored);
//! * Nagios' default templates: `[SERVICEPERFDATA]` `TIMET` `HOSTNAME`
//!   `SERVICEDESC` `EXECUTIONTIME` `LATENCY` `OUTPUT` `PERFDATA` and
//!   `[HOSTPERFDATA]` `TIMET` `HOSTNAME` `EXECUTIONTIME` `OUTPUT` `PERFDATA`,
//!   tab-separated;
//! * double pipes: `time||host||service||output||perfdata` (an empty
//!   service is host perfdata).
//!
//! Lines end in LF or CRLF; the last may have no end. Host perfdata gets
//! the service name [`HOST_SERVICE`].

/// The service name of host perfdata.
pub const HOST_SERVICE: &str = "_HOST_";

/// One check result from a spool line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check<'a> {
    /// When it ran, seconds since the epoch.
    pub time: u64,
    /// The host.
    pub host: &'a str,
    /// The service, or [`HOST_SERVICE`].
    pub service: &'a str,
    /// The perfdata string.
    pub perfdata: &'a str,
}

/// Reads one spool line (without its line end). `Ok(None)` for a line
/// that carries no perfdata (empty, or an empty perfdata field).
pub fn parse_line(line: &str) -> Result<Option<Check<'_>>, String> {
    let line = line.strip_suffix('\r').unwrap_or(line);
    if line.trim().is_empty() {
        return Ok(None);
    }
    let check = if line.contains("::") && line.contains("DATATYPE::") {
        bulk(line)?
    } else if let Some(rest) = line.strip_prefix("[SERVICEPERFDATA]\t") {
        template(rest, true)?
    } else if let Some(rest) = line.strip_prefix("[HOSTPERFDATA]\t") {
        template(rest, false)?
    } else if line.contains("||") {
        pipes(line)?
    } else {
        return Err("not a perfdata spool line (PNP4Nagios KEY::VALUE, [SERVICEPERFDATA]/[HOSTPERFDATA] template, or time||host||service||output||perfdata)".into());
    };
    Ok(Some(check).filter(|c| !c.perfdata.trim().is_empty()))
}

fn time(s: &str) -> Result<u64, String> {
    let t: u64 = s.trim().parse().map_err(|_| format!("time {s:?} is not a number of seconds"))?;
    if t == 0 {
        return Err("time 0".into());
    }
    Ok(t)
}

fn nonempty<'a>(what: &str, s: &'a str) -> Result<&'a str, String> {
    let s = s.trim();
    if s.is_empty() { Err(format!("empty {what}")) } else { Ok(s) }
}

/// PNP4Nagios bulk: `KEY::VALUE` fields.
fn bulk(line: &str) -> Result<Check<'_>, String> {
    let field = |key: &str| line.split('\t').find_map(|f| f.strip_prefix(key).and_then(|r| r.strip_prefix("::")));
    let host_data = match field("DATATYPE") {
        Some("SERVICEPERFDATA") => false,
        Some("HOSTPERFDATA") => true,
        Some(other) => return Err(format!("DATATYPE {other:?} is neither SERVICEPERFDATA nor HOSTPERFDATA")),
        None => return Err("no DATATYPE".into()),
    };
    let time = time(field("TIMET").ok_or("no TIMET")?)?;
    let host = nonempty("HOSTNAME", field("HOSTNAME").ok_or("no HOSTNAME")?)?;
    let (service, perfdata) = if host_data {
        (HOST_SERVICE, field("HOSTPERFDATA").ok_or("no HOSTPERFDATA")?)
    } else {
        (nonempty("SERVICEDESC", field("SERVICEDESC").ok_or("no SERVICEDESC")?)?, field("SERVICEPERFDATA").ok_or("no SERVICEPERFDATA")?)
    };
    Ok(Check { time, host, service, perfdata })
}

/// Nagios' default templates, after the `[...]` tag.
fn template(rest: &str, service_data: bool) -> Result<Check<'_>, String> {
    let f: Vec<&str> = rest.split('\t').collect();
    let want = if service_data { 7 } else { 5 };
    if f.len() < want {
        return Err(format!("{} tab-separated fields, expected {want} after the tag", f.len()));
    }
    let get = |i: usize| f.get(i).copied().unwrap_or_default();
    let time = time(get(0))?;
    let host = nonempty("host name", get(1))?;
    let (service, perfdata) = if service_data { (nonempty("service", get(2))?, get(6)) } else { (HOST_SERVICE, get(4)) };
    Ok(Check { time, host, service, perfdata })
}

/// `time||host||service||output||perfdata`.
fn pipes(line: &str) -> Result<Check<'_>, String> {
    let f: Vec<&str> = line.splitn(5, "||").collect();
    if f.len() < 5 {
        return Err(format!("{} ||-separated fields, expected 5", f.len()));
    }
    let get = |i: usize| f.get(i).copied().unwrap_or_default();
    let service = get(2).trim();
    Ok(Check { time: time(get(0))?, host: nonempty("host name", get(1))?, service: if service.is_empty() { HOST_SERVICE } else { service }, perfdata: get(4) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bulk_in_any_order_with_crlf() {
        let l = "HOSTNAME::web1\tSERVICECHECKCOMMAND::check_load\tTIMET::1700000100\tDATATYPE::SERVICEPERFDATA\tSERVICEDESC::Load avg\tSERVICEPERFDATA::load1=0.5;5;10;0\tSERVICESTATE::0\r";
        let c = parse_line(l).unwrap().unwrap();
        assert_eq!(c, Check { time: 1_700_000_100, host: "web1", service: "Load avg", perfdata: "load1=0.5;5;10;0" });
        let h = parse_line("DATATYPE::HOSTPERFDATA\tTIMET::1700000100\tHOSTNAME::web1\tHOSTPERFDATA::rta=0.1ms;;;0; pl=0%\tHOSTCHECKCOMMAND::check-host-alive").unwrap().unwrap();
        assert_eq!((h.service, h.perfdata), (HOST_SERVICE, "rta=0.1ms;;;0; pl=0%"));
        assert!(parse_line("DATATYPE::OTHER\tTIMET::1").unwrap_err().contains("DATATYPE"));
        assert!(parse_line("DATATYPE::SERVICEPERFDATA\tTIMET::x\tHOSTNAME::h\tSERVICEDESC::s\tSERVICEPERFDATA::a=1").unwrap_err().contains("time"));
        assert!(parse_line("DATATYPE::SERVICEPERFDATA\tHOSTNAME::h\tSERVICEDESC::s\tSERVICEPERFDATA::a=1").unwrap_err().contains("no TIMET"));
    }

    #[test]
    fn templates() {
        let s = parse_line("[SERVICEPERFDATA]\t1700000100\tdb1\tDisk /\t0.012\t0.001\tDISK OK\t/=2643MB;5948;5958;0;5968").unwrap().unwrap();
        assert_eq!(s, Check { time: 1_700_000_100, host: "db1", service: "Disk /", perfdata: "/=2643MB;5948;5958;0;5968" });
        let h = parse_line("[HOSTPERFDATA]\t1700000100\tdb1\t0.01\tPING OK\trta=1.2ms;3000;5000;0").unwrap().unwrap();
        assert_eq!((h.service, h.perfdata), (HOST_SERVICE, "rta=1.2ms;3000;5000;0"));
        assert!(parse_line("[SERVICEPERFDATA]\t1700000100\tdb1").unwrap_err().contains("fields"));
    }

    #[test]
    fn double_pipes() {
        let c = parse_line("1700000100||web1||HTTP||HTTP OK: 200||time=0.05s;1;2;0 size=512B;;;0").unwrap().unwrap();
        assert_eq!((c.host, c.service, c.perfdata), ("web1", "HTTP", "time=0.05s;1;2;0 size=512B;;;0"));
        assert_eq!(parse_line("1700000100||web1||||UP||rta=1ms").unwrap().unwrap().service, HOST_SERVICE);
        // Output with a || of its own: the perfdata is what follows the fourth.
        assert!(parse_line("x||web1||s||o||a=1").unwrap_err().contains("time"));
    }

    #[test]
    fn lines_without_perfdata_and_garbage() {
        assert_eq!(parse_line("").unwrap(), None);
        assert_eq!(parse_line("\r").unwrap(), None);
        assert_eq!(parse_line("1700000100||web1||s||ok||").unwrap(), None);
        assert!(parse_line("random text").is_err());
        assert!(parse_line("\u{fffd}\u{0}\u{1}").is_err());
    }
}
