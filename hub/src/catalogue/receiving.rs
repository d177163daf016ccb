//! The receiving bench's words: line states, the reasons of a decision, the
//! flags of a scanned code, photo verdicts, produce classes of the acceptance model and the
//! refusals of a receiving step, in zh-CN and English, rendered from their typed codes. Used by
//! the station app's receiving screen and by `hub receive show`. Pure: no I/O, no clock.

use super::Lang;
use crate::store::deliveries::{LineState, ReceivingError};
use hub_core::receiving::{CodeFlag, Outcome, PhotoVerdict, Reason};

/// `(key, zh-CN, en)`: the receiving screen's fixed texts (looked up by [`super::text`]).
pub(super) const TEXTS: &[(&str, &str, &str)] = &[
    ("receiving.title", "收货台", "Receiving bench"),
    ("receiving.today", "今日到货", "Today's deliveries"),
    (
        "receiving.none",
        "今天没有待收的到货",
        "No deliveries expected today",
    ),
    ("receiving.supplier", "供应商", "Supplier"),
    ("receiving.expected_at", "预计到达", "Expected"),
    ("receiving.progress", "进度", "Progress"),
    ("receiving.done", "已完成", "done"),
    ("receiving.held", "暂扣", "held"),
    ("receiving.waiting", "待处理", "waiting"),
    ("receiving.open", "打开", "Open"),
    ("receiving.closed", "已关闭", "closed"),
    ("receiving.in_progress", "收货中", "in progress"),
    ("receiving.line", "行", "Line"),
    ("receiving.sku", "商品", "Product"),
    ("receiving.lot", "批次", "Lot"),
    ("receiving.expiry", "保质期至", "Expiry"),
    (
        "receiving.count",
        "数量（应到 / 已扫）",
        "Count (expected / scanned)",
    ),
    (
        "receiving.weight",
        "重量（应到 / 称重）",
        "Weight (expected / weighed)",
    ),
    ("receiving.tolerance", "允差", "tolerance"),
    ("receiving.photo", "照片", "Photo"),
    ("receiving.no_photo", "未拍照", "no photo"),
    ("receiving.proposal", "系统建议", "Proposed decision"),
    ("receiving.state", "状态", "State"),
    ("receiving.reasons", "原因", "Reasons"),
    (
        "receiving.scan_label",
        "请扫描周转箱或到货单标签以打开一行",
        "Scan a crate or delivery label to open its line",
    ),
    ("receiving.selected", "当前行", "Current line"),
    ("receiving.scale", "台秤稳定读数", "Scale, stable weight"),
    ("receiving.recorded", "已记录", "recorded"),
    ("receiving.enter_count", "录入数量", "Enter count"),
    ("receiving.save_count", "保存数量", "Save count"),
    (
        "receiving.split",
        "拆分到另一批次",
        "Split into another lot",
    ),
    ("receiving.new_lot", "新批次号", "New lot"),
    ("receiving.quantity", "数量", "Quantity"),
    ("receiving.confirm", "确认决定", "Confirm decision"),
    ("receiving.close_delivery", "关闭到货单", "Close delivery"),
    ("receiving.release", "放行入库", "Release into stock"),
    ("receiving.reject", "拒收", "Reject"),
    ("receiving.release_reason", "处理说明", "Reason"),
    // A clerk's hold for a supervisor's review, with a reason from the list.
    ("receiving.hold", "扣留待审", "Hold for review"),
    ("receiving.hold_reason", "扣留原因", "Why"),
    (
        "receiving.hold.damaged_packaging",
        "包装破损",
        "damaged packaging",
    ),
    (
        "receiving.hold.wrong_temperature",
        "温度不对",
        "wrong temperature",
    ),
    (
        "receiving.hold.quality_doubt",
        "质量存疑",
        "doubtful quality",
    ),
    (
        "receiving.hold.label_unreadable",
        "标签无法识别",
        "unreadable label",
    ),
    (
        "receiving.supervisor_only",
        "只有主管或店长可以放行或拒收暂扣的货",
        "Only a supervisor or the store manager may release or reject held stock",
    ),
    (
        "receiving.scan_or_type",
        "扫描或输入码",
        "Scan or type a code",
    ),
    ("receiving.scan", "提交", "Enter"),
    (
        "receiving.resolve.checked_by_hand",
        "已人工核对",
        "checked by hand",
    ),
    (
        "receiving.resolve.supplier_confirmed",
        "供应商已确认",
        "supplier confirmed",
    ),
    ("receiving.resolve.damaged", "货物破损", "damaged"),
    (
        "receiving.resolve.wrong_product",
        "商品不符",
        "wrong product",
    ),
    (
        "receiving.upload_photo",
        "用平板拍照上传",
        "Take a photo with the tablet",
    ),
    ("receiving.send_photo", "上传照片", "Upload photo"),
    ("receiving.top_classes", "模型识别", "Model sees"),
    ("receiving.code_ok", "已绑定", "bound"),
    ("receiving.counted", "已计数", "counted"),
    ("receiving.flagged", "已标记", "flagged"),
    ("receiving.line_opened", "已打开", "opened"),
    ("receiving.weighed", "已称重", "weighed"),
    ("receiving.by", "操作人", "by"),
    ("receiving.expected_lines", "应到明细", "Expected lines"),
    ("receiving.done_action", "已完成", "Done"),
    (
        "receiving.upload_manifest",
        "导入文件（主管）",
        "Import a file (supervisor)",
    ),
    (
        "receiving.state.waiting",
        "待决定",
        "waiting for a decision",
    ),
    ("receiving.state.accepted", "已接收", "accepted"),
    (
        "receiving.state.partially_accepted",
        "部分接收",
        "partially accepted",
    ),
    ("receiving.state.rejected", "已拒收", "rejected"),
    ("receiving.state.held", "暂扣待审", "held for review"),
    (
        "receiving.state.released",
        "暂扣后已放行",
        "released after the hold",
    ),
    (
        "receiving.state.held_rejected",
        "暂扣后已拒收",
        "rejected after the hold",
    ),
    ("receiving.verdict.pass", "通过", "pass"),
    (
        "receiving.verdict.needs_review",
        "需人工复核",
        "needs review",
    ),
    ("receiving.verdict.fail", "不通过", "fail"),
    // Disputes on the receiving bench: the episodes of a delivery's dispute
    // and the supervisor's actions on them.
    ("dispute.title", "争议", "Disputes"),
    ("dispute.open", "未结", "open"),
    ("dispute.settled", "已结", "settled"),
    ("dispute.opened", "发起", "opened"),
    ("dispute.first_response", "首次响应", "first response"),
    ("dispute.photos_inspected", "照片已查看", "photos inspected"),
    ("dispute.response", "响应", "response"),
    ("dispute.kind.note", "备注", "note"),
    (
        "dispute.kind.photo_inspection",
        "查看照片",
        "photo inspection",
    ),
    ("dispute.kind.settled", "结案", "settlement"),
    ("dispute.note", "说明", "Note"),
    ("dispute.photos", "本行照片", "The line's photos"),
    (
        "dispute.no_photos",
        "本行没有已存照片",
        "No stored photos for this line",
    ),
    ("dispute.do_open", "发起争议", "Open a dispute"),
    ("dispute.do_respond", "添加响应", "Add a response"),
    ("dispute.do_inspect", "已查看照片", "Photos inspected"),
    ("dispute.do_settle", "结案", "Settle"),
    ("dispute.do_submit", "提交", "Submit"),
    (
        "dispute.supervisor_only",
        "争议只能由主管或店长处理",
        "Only a supervisor or the store manager can act on disputes",
    ),
    // The bench scale's live reading while the load settles.
    ("receiving.live_weight", "称重中…", "settling…"),
    // A supervisor reverses a line's last receipt, with a reason from the list
    // (hub_core::receiving_reversal).
    ("receiving.reverse", "撤销收货", "Reverse this receipt"),
    ("receiving.reverse.reason", "撤销原因", "Why"),
    (
        "receiving.reverse.confirm",
        "确认撤销：本行入库的数量将从库存中扣回",
        "Confirm: the quantity received on this line leaves the stock again",
    ),
    (
        "receiving.reverse.pick_reason",
        "请从列表中选择撤销原因",
        "pick why the receipt is reversed from the list",
    ),
    (
        "receiving.reverse.unconfirmed",
        "请先勾选确认，再撤销收货",
        "tick the confirmation before reversing the receipt",
    ),
    (
        "receiving.reverse.reason.count_error",
        "数量或重量记错",
        "count or weight recorded wrongly",
    ),
    (
        "receiving.reverse.reason.wrong_line",
        "收错行或批次",
        "received on the wrong line or lot",
    ),
    (
        "receiving.reverse.reason.damage_found",
        "入库后发现破损",
        "damage found after the receipt",
    ),
    (
        "receiving.reverse.reason.supplier_recall",
        "供应商召回",
        "recalled by the supplier",
    ),
];

/// Why reversing a line's last receipt was refused, in the clerk's language.
pub fn reversal_refusal(
    refusal: hub_core::receiving_reversal::ReversalRefusal,
    lang: Lang,
) -> String {
    use hub_core::receiving_reversal::ReversalRefusal as R;
    if lang == Lang::En {
        return refusal.to_string();
    }
    match refusal {
        R::NotSupervisor => "只有主管可以撤销入库".into(),
        R::DeliveryClosed => "到货单已关闭，不能撤销入库".into(),
        R::NothingReceived => "本行没有可撤销的入库".into(),
        R::OutsideWindow {
            window_minutes,
            age_minutes,
        } => format!("入库已过 {age_minutes} 分钟，只能在 {window_minutes} 分钟内撤销"),
        R::AlreadyHandedOver { received, left } => {
            format!("本次入库 {received} 中已有 {left} 出库，不能撤销")
        }
    }
}

/// A line's state in words.
pub fn state(state: LineState, lang: Lang) -> &'static str {
    let key = match state {
        LineState::Waiting => "receiving.state.waiting",
        LineState::Accepted => "receiving.state.accepted",
        LineState::PartiallyAccepted => "receiving.state.partially_accepted",
        LineState::Rejected => "receiving.state.rejected",
        LineState::Held => "receiving.state.held",
        LineState::Released => "receiving.state.released",
        LineState::HeldRejected => "receiving.state.held_rejected",
    };
    super::text(key, lang)
}

/// A decision's outcome in words.
pub fn outcome(outcome: Outcome, lang: Lang) -> &'static str {
    state(
        match outcome {
            Outcome::Accepted => LineState::Accepted,
            Outcome::PartiallyAccepted => LineState::PartiallyAccepted,
            Outcome::Rejected => LineState::Rejected,
            Outcome::Held => LineState::Held,
        },
        lang,
    )
}

/// A photo verdict in words.
pub fn verdict(verdict: PhotoVerdict, lang: Lang) -> &'static str {
    super::text(
        match verdict {
            PhotoVerdict::Pass => "receiving.verdict.pass",
            PhotoVerdict::NeedsReview => "receiving.verdict.needs_review",
            PhotoVerdict::Fail => "receiving.verdict.fail",
        },
        lang,
    )
}

/// A reason of a decision in words.
pub fn reason(reason: &Reason, lang: Lang) -> String {
    let zh = lang == Lang::ZhCn;
    match reason {
        Reason::CountShort { expected, counted } if zh => {
            format!("数量不足：应到 {expected}，实点 {counted}")
        }
        Reason::CountShort { expected, counted } => {
            format!("short: {counted} counted of {expected} expected")
        }
        Reason::CountOver { expected, counted } if zh => {
            format!("数量超出：应到 {expected}，实点 {counted}")
        }
        Reason::CountOver { expected, counted } => {
            format!("over: {counted} counted of {expected} expected")
        }
        Reason::NotCounted if zh => "未点数：请扫描每件商品或录入数量".into(),
        Reason::NotCounted => "not counted: scan each item or enter the count".into(),
        Reason::CountDisagreesWithWeight { expected, counted } if zh => format!(
            "重量与应到数量 {expected} 相符，但点数为 {counted}：可能漏扫或重复扫描，请人工核对"
        ),
        Reason::CountDisagreesWithWeight { expected, counted } => format!(
            "the weight matches the {expected} expected but {counted} were counted: a missed or doubled scan? check by hand"
        ),
        Reason::WeightOutOfTolerance {
            expected_g,
            measured_g,
            tolerance_g,
        } if zh => {
            format!("重量超出允差：应到 {expected_g} 克 ± {tolerance_g} 克，称得 {measured_g} 克")
        }
        Reason::WeightOutOfTolerance {
            expected_g,
            measured_g,
            tolerance_g,
        } => format!(
            "weight out of tolerance: {measured_g} g weighed, {expected_g} g ± {tolerance_g} g expected"
        ),
        Reason::NoStableWeight if zh => "没有稳定的称重读数：请放上台秤称重".into(),
        Reason::NoStableWeight => "no stable weight: put the goods on the scale".into(),
        Reason::ModelFail if zh => "照片检查不通过：商品不符或品相不合格".into(),
        Reason::ModelFail => "the photo check failed: wrong product or bad condition".into(),
        Reason::ModelUncertain if zh => "照片检查无法确定：需人工复核".into(),
        Reason::ModelUncertain => "the photo check is not sure: a person must look".into(),
        Reason::NoPhotoCheck if zh => "未拍照检查：请拍一张照片".into(),
        Reason::NoPhotoCheck => "no photo check: take a photo".into(),
        Reason::SuspiciousCodes { count } if zh => format!("{count} 个追溯码被标记"),
        Reason::SuspiciousCodes { count } => format!("{count} scanned code(s) flagged"),
        Reason::ExpiryTooClose { days_left, minimum } if zh => {
            format!("临近过期：还剩 {days_left} 天，本站要求至少 {minimum} 天")
        }
        Reason::ExpiryTooClose { days_left, minimum } => {
            format!("expires too soon: {days_left} day(s) left, the site wants {minimum}")
        }
        Reason::Expired { days_left } if zh => format!("已过期 {} 天", -days_left),
        Reason::Expired { days_left } => format!("expired {} day(s) ago", -days_left),
        Reason::NotInManifest if zh => "不在到货单上".into(),
        Reason::NotInManifest => "not in the delivery manifest".into(),
        Reason::HeldByStaff { reason } => format!(
            "{}{}",
            if zh {
                "收货员扣留待审："
            } else {
                "held for review by the clerk: "
            },
            super::text(&format!("receiving.hold.{}", reason.as_str()), lang)
        ),
    }
}

/// Why a scanned code was flagged, in words.
pub fn flag(flag: &CodeFlag, lang: Lang) -> String {
    if lang == Lang::En {
        return flag.describe();
    }
    match flag {
        CodeFlag::AlreadyBound { batch } => {
            format!("此码已绑定到批次 {batch}：重复扫描或复制的码")
        }
        CodeFlag::NotIssuedForBatch => "不在中心为此批次下发的追溯码清单中".into(),
        CodeFlag::GtinMismatch { gtin } => {
            format!("商品条码 {gtin} 不属于此商品：商品不符？")
        }
        CodeFlag::Malformed { detail } => malformed_code(detail),
        CodeFlag::Unrecognised { detail } => format!("无法识别的码（{detail}）"),
        CodeFlag::LotMismatch { code_lot, line_lot } => {
            format!("码上的批次为 {code_lot}，到货行批次为 {line_lot}")
        }
        CodeFlag::Expired { expiry, days_left } => {
            format!("码上的保质期 {expiry} 已过（{} 天前）", -days_left)
        }
        CodeFlag::ExpiryTooClose {
            expiry,
            days_left,
            minimum,
        } => format!("码上的保质期为 {expiry}，还剩 {days_left} 天；本站要求至少 {minimum} 天"),
        CodeFlag::ExpiryMismatch {
            code_expiry,
            line_expiry,
        } => format!("码上的保质期为 {code_expiry}，到货行为 {line_expiry}"),
    }
}

/// Why a receiving step was refused, in words (nothing was recorded).
pub fn refusal(e: &ReceivingError, lang: Lang) -> String {
    if lang == Lang::En {
        return e.to_string();
    }
    match e {
        ReceivingError::UnknownDelivery(d) => format!("到货单 {d} 未知：中心的到货清单还没有到"),
        ReceivingError::UnknownLine {
            delivery_id,
            line_no,
        } => format!("到货单 {delivery_id} 没有第 {line_no} 行"),
        ReceivingError::Cancelled(d) => format!("到货单 {d} 已被中心取消"),
        ReceivingError::Closed(d) => format!("到货单 {d} 已关闭，不能再操作"),
        ReceivingError::AlreadyDecided {
            delivery_id,
            line_no,
        } => format!("到货单 {delivery_id} 第 {line_no} 行已经决定"),
        ReceivingError::NoLineSelected(_) => "还没有打开到货行：请先扫描周转箱或到货单标签".into(),
        ReceivingError::UnknownLabel(l) => format!("“{l}” 不是未关闭到货单的标签"),
        ReceivingError::WantsTraceCode { code, .. } => {
            format!("此行有下发的追溯码：请扫描商品的追溯码，而不是商品条码（{code}）")
        }
        ReceivingError::NothingHeld {
            delivery_id,
            line_no,
        } => format!("到货单 {delivery_id} 第 {line_no} 行没有暂扣的货"),
        ReceivingError::BadQuantity { asked, held, .. } => {
            format!("数量 {asked} 不对：应在 1 和 {held} 之间（放行加拒收须等于暂扣数量）")
        }
        ReceivingError::UnknownSku(s) => format!("商品 {s} 未知：商品主数据还没有到"),
        ReceivingError::DisputeAlreadyOpen { note, .. } => format!("已有未结争议（{note}）"),
        ReceivingError::NoOpenDispute(_) => "没有未结争议".into(),
        ReceivingError::EmptyDisputeNote => "争议需要写明说明".into(),
        ReceivingError::BadCount(n) => format!(
            "数量 {n} 不可能：请录入实点件数（0 到 {}）",
            crate::store::deliveries::MAX_LINE_COUNT
        ),
        // A receipt's reversal.
        ReceivingError::ReversalRefused {
            line_no, refusal, ..
        } => format!("第 {line_no} 行：{}", reversal_refusal(*refusal, lang)),
        ReceivingError::ReversalRequestReused(id) => {
            format!("请求编号 {id} 已用于撤销另一行的入库：新的请求需要新的编号")
        }
        ReceivingError::Station(e) => format!("此终端不是收货台（{e}）"),
        ReceivingError::Ledger(e) => format!("库存账不接受此操作（{e}）"),
        ReceivingError::Store(_) => "数据无法保存：请稍后再试，并告知技术人员".into(),
    }
}

/// A code that is not valid, in Chinese: what kind of fault the scanner's parser found (its
/// English sentence, kept for a technician, comes from `firmware_shim::codes` and
/// `hub_core::Gtin` — the test below feeds real bad codes through them so a changed sentence is
/// noticed) and what to do.
fn malformed_code(detail: &str) -> String {
    let has = |words: &[&str]| words.iter().any(|w| detail.contains(w));
    let what = if has(&["check digit", "check character"]) {
        "校验位不对，码可能印错、污损或扫错"
    } else if has(&["too short", "too long"])
        || (detail.contains("it has ") && detail.contains(" digits"))
    {
        "位数不对"
    } else if has(&["is not in", "not allowed", "it contains"]) {
        "含有不允许的字符"
    } else if has(&["illegal month", "illegal day", "illegal time"]) {
        "码上的日期或时间不存在"
    } else if has(&[
        "unknown AI",
        "empty value",
        "misplaced FNC1",
        "repeated with another",
    ]) {
        "GS1 数据结构不对"
    } else if detail.contains("Digital Link") {
        "GS1 数字链接网址无效"
    } else if detail.contains("empty scan") {
        "扫到的是空码"
    } else {
        "码的格式不对"
    };
    format!("无效的码：{what}；请重扫，仍不行请手工核对（{detail}）")
}

/// The zh-CN name of a produce class of the acceptance model (ImageNet labels) with its first
/// English name, "other item" in Chinese before any other label; in English the label's first
/// name.
pub fn produce_class(label: &str, lang: Lang) -> String {
    let first = label.split(',').next().unwrap_or(label).trim();
    if lang == Lang::En {
        return first.to_owned();
    }
    const NAMES: &[(&str, &str)] = &[
        ("head cabbage", "卷心菜"),
        ("broccoli", "西兰花"),
        ("cauliflower", "花椰菜"),
        ("zucchini", "西葫芦"),
        ("spaghetti squash", "金丝瓜"),
        ("acorn squash", "橡子南瓜"),
        ("butternut squash", "奶油南瓜"),
        ("cucumber", "黄瓜"),
        ("artichoke", "洋蓟"),
        ("bell pepper", "甜椒"),
        ("cardoon", "刺菜蓟"),
        ("mushroom", "蘑菇"),
        ("Granny Smith", "青苹果"),
        ("strawberry", "草莓"),
        ("orange", "橙子"),
        ("lemon", "柠檬"),
        ("fig", "无花果"),
        ("pineapple", "菠萝"),
        ("banana", "香蕉"),
        ("jackfruit", "菠萝蜜"),
        ("custard apple", "番荔枝"),
        ("pomegranate", "石榴"),
        ("corn", "玉米"),
        ("ear", "玉米穗"),
        ("French loaf", "法棍面包"),
        ("bagel", "百吉饼"),
        ("pretzel", "椒盐卷饼"),
        ("mashed potato", "土豆泥"),
        ("ice cream", "冰淇淋"),
    ];
    NAMES
        .iter()
        .find(|(en, _)| *en == first)
        .map(|(_, zh)| format!("{zh}（{first}）"))
        // The model knows a thousand things that are not produce; a clerk still reads what
        // kind of answer it is.
        .unwrap_or_else(|| format!("其他物品（{first}）"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn has_han(s: &str) -> bool {
        s.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c))
    }

    #[test]
    fn a_malformed_code_says_in_chinese_what_kind_of_fault_it_is() {
        let patterns = crate::codes::SitePatterns::default();
        for (scan, fault) in [
            ("]C1010400638133393221A1", "校验位不对"),
            ("]C10104006381333931172613992 1A1", "日期或时间不存在"),
            ("]C1010400638133393", "位数不对"),
            ("]C123", "GS1 数据结构不对"),
            ("]C1010400638133393A21A1", "含有不允许的字符"),
        ] {
            let detail = match crate::codes::classify_text(scan, &patterns) {
                crate::codes::ScannedCode::Malformed { reason, .. } => reason,
                other => panic!("{scan} is not malformed: {other:?}"),
            };
            let words = flag(
                &CodeFlag::Malformed {
                    detail: detail.clone(),
                },
                Lang::ZhCn,
            );
            assert!(
                words.starts_with("无效的码：") && words.contains(fault),
                "{scan}: {detail} → {words}"
            );
            assert!(words.contains(&detail), "{words}");
        }
    }

    #[test]
    fn every_reason_flag_and_state_has_chinese_and_english_words() {
        let d = |s: &str| s.parse::<chrono::NaiveDate>().unwrap();
        let reasons = [
            Reason::CountShort {
                expected: 10,
                counted: 8,
            },
            Reason::CountOver {
                expected: 10,
                counted: 12,
            },
            Reason::NotCounted,
            Reason::CountDisagreesWithWeight {
                expected: 10,
                counted: 9,
            },
            Reason::WeightOutOfTolerance {
                expected_g: 1000,
                measured_g: 800,
                tolerance_g: 50,
            },
            Reason::NoStableWeight,
            Reason::ModelFail,
            Reason::ModelUncertain,
            Reason::NoPhotoCheck,
            Reason::SuspiciousCodes { count: 2 },
            Reason::ExpiryTooClose {
                days_left: 1,
                minimum: 2,
            },
            Reason::Expired { days_left: -3 },
            Reason::NotInManifest,
            Reason::HeldByStaff {
                reason: hub_core::receiving::HoldReason::QualityDoubt,
            },
        ];
        for r in &reasons {
            // Exhaustive on purpose: a new reason fails to compile here until listed above.
            match r {
                Reason::CountShort { .. }
                | Reason::CountOver { .. }
                | Reason::NotCounted
                | Reason::CountDisagreesWithWeight { .. }
                | Reason::WeightOutOfTolerance { .. }
                | Reason::NoStableWeight
                | Reason::ModelFail
                | Reason::ModelUncertain
                | Reason::NoPhotoCheck
                | Reason::SuspiciousCodes { .. }
                | Reason::ExpiryTooClose { .. }
                | Reason::Expired { .. }
                | Reason::NotInManifest
                | Reason::HeldByStaff { .. } => {}
            }
            assert!(has_han(&reason(r, Lang::ZhCn)), "{r:?}");
            let en = reason(r, Lang::En);
            assert!(!has_han(&en) && !en.contains('{'), "{r:?}: {en}");
        }
        let flags = [
            CodeFlag::AlreadyBound { batch: "L1".into() },
            CodeFlag::NotIssuedForBatch,
            CodeFlag::GtinMismatch { gtin: "1".into() },
            CodeFlag::Malformed { detail: "x".into() },
            CodeFlag::Unrecognised { detail: "x".into() },
            CodeFlag::LotMismatch {
                code_lot: "A".into(),
                line_lot: "B".into(),
            },
            CodeFlag::Expired {
                expiry: d("2020-01-01"),
                days_left: -2,
            },
            CodeFlag::ExpiryTooClose {
                expiry: d("2020-01-01"),
                days_left: 1,
                minimum: 2,
            },
            CodeFlag::ExpiryMismatch {
                code_expiry: d("2020-01-01"),
                line_expiry: d("2020-01-02"),
            },
        ];
        for f in &flags {
            assert!(has_han(&flag(f, Lang::ZhCn)), "{f:?}");
            assert!(!has_han(&flag(f, Lang::En)), "{f:?}");
        }
        for s in [
            LineState::Waiting,
            LineState::Accepted,
            LineState::PartiallyAccepted,
            LineState::Rejected,
            LineState::Held,
            LineState::Released,
            LineState::HeldRejected,
        ] {
            assert!(has_han(state(s, Lang::ZhCn)), "{s:?}");
            assert!(!has_han(state(s, Lang::En)), "{s:?}");
        }
        for v in [
            PhotoVerdict::Pass,
            PhotoVerdict::NeedsReview,
            PhotoVerdict::Fail,
        ] {
            assert!(has_han(verdict(v, Lang::ZhCn)));
            assert!(!has_han(verdict(v, Lang::En)));
        }
        assert_eq!(produce_class("banana", Lang::ZhCn), "香蕉（banana）");
        assert_eq!(produce_class("pineapple, ananas", Lang::En), "pineapple");
        assert_eq!(
            produce_class("tennis ball", Lang::ZhCn),
            "其他物品（tennis ball）"
        );
    }

    #[test]
    fn every_reversal_reason_and_refusal_has_chinese_and_english_words() {
        use hub_core::receiving_reversal::{ReversalReason, ReversalRefusal as R};
        for reason in ReversalReason::ALL {
            let key = format!("receiving.reverse.reason.{}", reason.as_str());
            assert!(crate::catalogue::has(&key), "{key}");
            assert!(has_han(crate::catalogue::text(&key, Lang::ZhCn)), "{key}");
            assert!(!has_han(crate::catalogue::text(&key, Lang::En)), "{key}");
        }
        for refusal in [
            R::NotSupervisor,
            R::DeliveryClosed,
            R::NothingReceived,
            R::OutsideWindow {
                window_minutes: 30,
                age_minutes: 45,
            },
            R::AlreadyHandedOver {
                received: 10,
                left: 3,
            },
        ] {
            let zh = reversal_refusal(refusal, Lang::ZhCn);
            let en = reversal_refusal(refusal, Lang::En);
            assert!(has_han(&zh), "{refusal:?}: {zh}");
            assert!(!has_han(&en) && !en.contains('{'), "{refusal:?}: {en}");
            if let R::OutsideWindow { .. } = refusal {
                assert!(zh.contains("30") && en.contains("30 min"), "{zh} / {en}");
            }
        }
    }
}
