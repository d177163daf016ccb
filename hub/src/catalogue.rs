//! The message catalogue: every sentence a person reads on a screen (the station app, the status
//! page) or hears from the CLI about a pickup code, in zh-CN (the default) and English.
//!
//! One place to translate. Screens name a text by its key (`t("pickup.hand_over")` in a
//! template); outcomes are rendered from their typed codes ([`code_check`]), never from `Debug`
//! output. Times shown to people are in the site's time zone ([`local_time`]). Pure: no I/O,
//! no clock.

use hub_core::Timestamp;
use hub_core::pickup::{CodeCheck, CodeProblem};

pub mod receiving;

/// A language a person reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub enum Lang {
    /// Simplified Chinese, the default.
    #[default]
    ZhCn,
    En,
}

impl Lang {
    /// Every language, default first.
    pub const ALL: [Lang; 2] = [Lang::ZhCn, Lang::En];

    /// The BCP 47 tag (`lang` attribute, `?lang=`, stored per staff member).
    pub fn tag(self) -> &'static str {
        match self {
            Lang::ZhCn => "zh-CN",
            Lang::En => "en",
        }
    }

    /// Reads a tag (`zh-CN`, `zh`, `en`, any case); `None` for anything else.
    pub fn parse(tag: &str) -> Option<Lang> {
        match tag.trim().to_ascii_lowercase().as_str() {
            "zh-cn" | "zh" | "zh-hans" => Some(Lang::ZhCn),
            "en" | "en-us" | "en-gb" => Some(Lang::En),
            _ => None,
        }
    }
}

/// How a result sounds and looks: green, amber or red, each with its own tone and icon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Tone {
    Ok,
    Attention,
    Error,
}

/// `(key, zh-CN, en)`: the screens' fixed texts.
const TEXTS: &[(&str, &str, &str)] = &[
    // The station app's frame.
    ("app.title", "站点终端", "Station"),
    (
        "app.offline",
        "与主机的连接已断开，正在重连…",
        "Lost the hub; reconnecting…",
    ),
    ("app.sign_out", "退出", "Sign out"),
    ("app.language", "English", "中文"),
    // Pairing a tablet.
    ("pair.title", "绑定平板", "Pair this tablet"),
    (
        "pair.help",
        "在主机上运行 hub station pair 站点编号，然后输入显示的配对码。",
        "On the hub, run hub station pair STATION and enter the code it shows.",
    ),
    ("pair.code", "配对码", "Pairing code"),
    ("pair.submit", "绑定", "Pair"),
    (
        "pair.bad_code",
        "配对码无效或已过期。请在主机上重新生成配对码。",
        "That pairing code is wrong or expired. Make a new one on the hub.",
    ),
    ("pair.done", "已绑定到", "Paired to"),
    // Signing in.
    ("signin.title", "员工登录", "Staff sign-in"),
    ("signin.staff", "工号", "Staff id"),
    ("signin.pin", "密码 (PIN)", "PIN"),
    ("signin.submit", "登录", "Sign in"),
    ("signin.wrong", "工号或密码错误。", "Wrong staff id or PIN."),
    ("signin.tries_left", "剩余尝试次数", "Tries left"),
    (
        "signin.locked",
        "密码错误次数过多，账号已锁定。请稍后再试或联系主管。",
        "Too many wrong PINs: this account is locked. Try later or ask a supervisor.",
    ),
    (
        "signin.disabled",
        "该员工账号已停用，请联系主管。",
        "This staff account is disabled; ask a supervisor.",
    ),
    // The pickup counter.
    ("pickup.title", "取货台", "Pickup counter"),
    (
        "pickup.waiting",
        "请扫描顾客的取货码",
        "Scan the customer's pickup code",
    ),
    ("pickup.code", "取货码", "Code"),
    (
        "pickup.order_or_tail",
        "订单号或手机尾号",
        "Order no. or phone tail",
    ),
    ("pickup.check", "查询", "Check"),
    ("pickup.clear", "清除", "Clear"),
    ("pickup.hand_over", "确认交付", "Hand over"),
    ("pickup.handed_over", "已交付", "Handed over"),
    ("pickup.refuse", "拒绝交付", "Refuse"),
    ("pickup.refused", "已拒绝交付", "Refused"),
    ("pickup.customer", "顾客", "Customer"),
    ("pickup.phone_tail", "尾号", "phone ending"),
    ("pickup.items", "商品", "Items"),
    ("pickup.quantity", "数量", "Qty"),
    ("pickup.lot", "批次", "Lot"),
    ("pickup.expiry", "到期", "Expiry"),
    ("pickup.by", "经办人", "by"),
    (
        "pickup.check_first",
        "请先扫描或输入该订单的取货码。",
        "Scan or type this order's code first.",
    ),
    ("pickup.reason", "原因", "Reason"),
    // Refusal reasons (a list, not free text).
    ("refuse.customer_declined", "顾客拒收", "Customer declined"),
    ("refuse.damaged", "商品破损", "Damaged goods"),
    ("refuse.wrong_items", "商品不符", "Wrong items"),
    (
        "refuse.identity",
        "无法核实顾客身份",
        "Cannot verify the customer",
    ),
    // Errors of the app itself.
    (
        "error.session",
        "登录已过期，请重新登录。",
        "Your session expired; sign in again.",
    ),
    (
        "error.forged",
        "请求被拒绝（来源或校验码不符）。请刷新页面后重试。",
        "Request refused (wrong origin or check token). Reload the page and try again.",
    ),
    (
        "error.store",
        "主机暂时无法保存，请稍后重试；若持续出现请联系技术人员。",
        "The hub cannot save right now; try again, and call the technician if it persists.",
    ),
    (
        "error.wrong_station",
        "此平板绑定的不是取货台。",
        "This tablet is not paired to a pickup counter.",
    ),
    // The status page.
    ("status.title", "运行状态", "hub status"),
    ("status.site", "站点", "site"),
    ("status.updated", "更新于", "updated"),
    ("status.up_since", "启动于", "up since"),
    ("status.uplink", "上行连接", "Uplink"),
    (
        "status.events_waiting",
        "条事件待发送",
        "events waiting to send",
    ),
    ("status.all_delivered", "全部已发送", "all delivered"),
    ("status.oldest_waiting", "最早一条等待", "oldest waiting"),
    (
        "status.oversized",
        "条来自中心的超大消息已拒收",
        "oversized message(s) from central rejected",
    ),
    ("status.today", "今日", "Today"),
    ("status.receipts", "入库", "receipts"),
    ("status.handovers", "交付", "handovers"),
    ("status.lines", "行", "lines"),
    ("status.skus_in_stock", "个商品有库存", "SKUs in stock"),
    ("status.alerts", "未关闭预警", "Open alerts"),
    ("status.no_alerts", "没有未关闭的预警", "no open alerts"),
    ("status.receiving", "收货", "Receiving"),
    ("status.deliveries_open", "个到货未关闭", "deliveries open"),
    ("status.held", "暂扣", "held"),
    ("status.units", "件", "units"),
    ("status.no_disputes", "没有未结争议", "no open disputes"),
    ("status.dispute", "争议", "dispute"),
    ("status.opened", "提出于", "opened"),
    ("status.model", "验收模型", "Acceptance model"),
    ("status.backend", "推理后端", "backend"),
    ("status.no_model", "未加载模型", "no model loaded"),
    ("status.storage", "存储", "Storage"),
    ("status.free", "可用", "free"),
    ("status.of", "共", "of"),
    ("status.free_unknown", "可用空间未知", "free space unknown"),
    ("status.devices", "设备", "Devices"),
    ("status.online_of", "在线", "online of"),
    ("status.no_devices", "没有设备上报", "no devices reported"),
    ("status.device", "设备", "device"),
    ("status.state", "状态", "state"),
    ("status.last_reading", "最近读数", "last reading"),
    ("status.last_seen", "最近通信", "last seen"),
    ("status.online", "在线", "online"),
    ("status.offline", "离线", "offline"),
    ("status.never", "从未", "never"),
    (
        "status.db_unreadable",
        "数据库无法读取",
        "Database cannot be read",
    ),
    (
        "status.not_durable",
        "数据库提交不持久（测试版本的开关）",
        "Database commits are not durable (a test build's switch)",
    ),
    (
        "status.db_write_failing",
        "数据库写入失败，开始于",
        "Database writes are failing since",
    ),
    ("status.failures", "次失败", "failure(s)"),
    ("status.what_to_do", "处理办法", "What to do"),
    (
        "status.reloads",
        "本页自动刷新间隔（秒）",
        "this page reloads every (s)",
    ),
    ("status.uplink.not_configured", "未配置", "not configured"),
    ("status.uplink.connecting", "连接中", "connecting"),
    ("status.uplink.online", "在线", "online"),
    ("status.uplink.offline", "离线", "offline"),
    ("status.tier.red", "红", "red"),
    ("status.tier.orange", "橙", "orange"),
    ("status.tier.yellow", "黄", "yellow"),
    ("status.tier.normal", "正常", "normal"),
    // `hub trace`: an item's state and a movement's kind as stored.
    ("trace.status.bound", "已绑定", "bound"),
    ("trace.status.in_stock", "在库", "in stock"),
    ("trace.status.quarantined", "扣留待审", "held for review"),
    ("trace.status.rejected", "已拒收", "rejected"),
    ("trace.status.handed_over", "已交付", "handed over"),
    ("trace.movement.receipt", "入库", "receipt"),
    ("trace.movement.issue", "出库", "issue"),
    ("trace.movement.return", "退回", "return"),
    ("trace.movement.adjustment", "盘点调整", "adjustment"),
    ("trace.movement.loss", "损耗", "loss"),
    ("trace.movement.transfer_in", "调入", "transfer in"),
    ("trace.movement.transfer_out", "调出", "transfer out"),
    // `hub alerts` in the site's words.
    ("cli.alerts.none", "没有未处理的告警", "no open alerts"),
    ("cli.alerts.since", "自", "since"),
    ("cli.alerts.todo", "处理：", "To do: "),
    // Supervisor actions at a station.
    (
        "supervisor.only",
        "此操作仅限主管或店长：请主管或店长在本平板登录后再操作。",
        "Only a supervisor or the store manager may do this: one of them signs in on this tablet and does it.",
    ),
    ("supervisor.unlock", "解除锁定", "Unlock the station"),
    ("supervisor.unlocks_in", "自动解锁", "Unlocks in"),
    // The item check on the pickup screen.
    ("pickup.ticked", "已核对", "Checked"),
    ("pickup.queue", "排队中", "Waiting"),
    ("pickup.item_code", "商品追溯码", "Item code"),
    ("pickup.item_check", "核对商品", "Check item"),
    ("item.ok", "已核对", "Item checked"),
    (
        "item.not_on_order",
        "错货：此商品不在该订单中",
        "Wrong item: not on this order",
    ),
    (
        "item.wrong_batch",
        "批次不符：请换预留批次的商品",
        "Wrong batch: take the reserved lot",
    ),
    (
        "item.quarantined",
        "该商品被隔离，不能交付",
        "Quarantined: must not be handed over",
    ),
    (
        "item.already_handed_over",
        "该商品已随其他订单交付",
        "Already handed over with another order",
    ),
    (
        "item.unknown",
        "未知追溯码：本站没有收货记录",
        "Unknown code: never received here",
    ),
    (
        "item.line_full",
        "该行商品已全部核对",
        "This line is fully checked already",
    ),
    (
        "item.no_order",
        "请先扫描顾客的取货码，再扫描商品",
        "Scan the customer's pickup code first, then the items",
    ),
    // Why a handover was refused, by the workflow's refusal code.
    (
        "handover.unknown_order",
        "本站点没有这个订单",
        "This order is not known at this site",
    ),
    (
        "handover.not_checked",
        "请先在本取货台查询顾客的取货码，再交付",
        "Check the customer's pickup code at this counter first, then hand over",
    ),
    (
        "handover.not_open",
        "订单当前不可交付",
        "This order cannot be handed over now",
    ),
    (
        "handover.not_open.expired",
        "订单已过取货期限，不能交付",
        "The pickup window has closed; do not hand over",
    ),
    (
        "handover.not_open.not_yet_open",
        "订单尚未到取货时间",
        "The order is not open for pickup yet",
    ),
    (
        "handover.not_open.already_collected",
        "订单已被领取，不能再次交付",
        "Already collected; do not hand over again",
    ),
    (
        "handover.not_open.cancelled",
        "订单已取消，不能交付",
        "Cancelled; do not hand over",
    ),
    (
        "handover.not_open.refunded",
        "订单已退款，不能交付",
        "Refunded; do not hand over",
    ),
    (
        "handover.not_open.on_hold",
        "订单被暂停，请联系主管",
        "On hold; ask a supervisor",
    ),
    (
        "handover.not_open.wrong_site",
        "订单属于其他站点，不能在此交付",
        "This order belongs to another site; do not hand over here",
    ),
    (
        "handover.item_refused",
        "扫描的商品不能随此订单交付（错货、已交付或隔离中）",
        "A scanned item cannot leave with this order (wrong item, already handed over or quarantined)",
    ),
    (
        "handover.items_not_scanned",
        "还有商品未扫码，请逐件扫码后再交付",
        "Some items are not scanned yet; scan each one, then hand over",
    ),
    (
        "handover.no_such_line",
        "订单中没有这一行",
        "The order has no such line",
    ),
    (
        "handover.too_much_refused",
        "拒收数量超过订购数量",
        "More refused than ordered",
    ),
    (
        "handover.only_expired_stock",
        "只剩过期库存：请报损后用新鲜商品交付",
        "Only expired stock is left: write it off and hand over fresh stock",
    ),
    (
        "handover.reserved_lot_expired",
        "预留批次已过期，请联系总部更换批次",
        "The reserved lot has expired; ask central to reserve another lot",
    ),
    (
        "handover.station",
        "此平板所属的不是本站点声明的取货台",
        "This tablet's station is not a pickup counter of this site",
    ),
    (
        "handover.ledger",
        "库存不足，无法交付；请核对库存",
        "Not enough stock to hand over; check the stock",
    ),
    (
        "handover.refused",
        "交付被拒绝，未做任何更改",
        "Handover refused; nothing changed",
    ),
    (
        "supervisor.locked_help",
        "自动解锁倒计时；主管可在本平板登录后点击“解除锁定”。",
        "Unlocks by itself when the countdown ends; a supervisor can sign in on this tablet and tap “Unlock the station”.",
    ),
    (
        "supervisor.done.unlocked",
        "取货台已解除锁定",
        "Station unlocked",
    ),
    (
        "supervisor.done.undone",
        "已撤销交付，货品已退回库存",
        "Handover undone; the goods are back in stock",
    ),
    ("supervisor.undo", "撤销交付", "Undo the handover"),
    ("undo.reason", "撤销原因", "Why undo"),
    (
        "undo.wrong_customer",
        "交给了错误的顾客",
        "Handed to the wrong customer",
    ),
    (
        "undo.customer_returned",
        "顾客退回",
        "Customer brought it back",
    ),
    ("undo.clerk_mistake", "店员误操作", "Clerk's mistake"),
    (
        "undo.too_late",
        "已超过可撤销时间，请联系总部更正。",
        "Too late to undo here; ask central to correct it.",
    ),
    (
        "undo.not_handed_over",
        "该订单未交付或已撤销，无需撤销。",
        "This order was not handed over (or was undone already); nothing to undo.",
    ),
    ("supervisor.new_pairing", "新配对码", "New pairing code"),
    (
        "supervisor.pairing_code",
        "新平板配对码",
        "Pairing code for a new tablet at",
    ),
    ("supervisor.valid_until", "有效期至", "valid until"),
    // Manager dashboard.
    ("dashboard.title", "经营看板", "Manager dashboard"),
    (
        "dashboard.supervisors_only",
        "经营看板仅限主管或店长查看，请主管或店长登录。",
        "The dashboard is for supervisors and the store manager; sign in as one of them.",
    ),
    (
        "dashboard.bad_period",
        "看不懂所选日期范围，请选择今天、7 天或 30 天。",
        "The period cannot be read; pick today, 7 or 30 days.",
    ),
    ("dashboard.days_unit", "天", "days"),
    ("dashboard.unit.piece", "按件", "pieces"),
    ("dashboard.unit.gram", "按克", "grams"),
    ("dashboard.today", "今天", "Today"),
    ("dashboard.days7", "近 7 天", "7 days"),
    ("dashboard.days30", "近 30 天", "30 days"),
    ("dashboard.csv", "导出 CSV", "Export CSV"),
    ("dashboard.to_exclusive", "不含结束日", "end day excluded"),
    ("dashboard.target", "目标", "target"),
    ("dashboard.stock_out_rate", "缺货率", "Stock-out rate"),
    ("dashboard.turnover_days", "库存周转天数", "Turnover days"),
    ("dashboard.loss_rate", "损耗率", "Loss rate"),
    ("dashboard.sell_through_rate", "动销率", "Sell-through rate"),
    (
        "dashboard.acceptance_pass_rate",
        "验收合格率",
        "Acceptance pass rate",
    ),
    ("dashboard.order_fill_rate", "订单满足率", "Order fill rate"),
    (
        "dashboard.near_expiry_share",
        "临期批次占比",
        "Near-expiry share",
    ),
    (
        "dashboard.pickups_on_time",
        "提货：按时 / 逾期 / 未取（到期）",
        "Pickups: on time / late / never (due)",
    ),
    (
        "dashboard.disputes",
        "争议：新开 · 处理完毕用时",
        "Disputes: opened · settled within",
    ),
    ("dashboard.forecast_wape", "预测误差 WAPE", "Forecast WAPE"),
    ("dashboard.sku_days", "个 SKU·天", "SKU-days"),
    (
        "dashboard.forecast_missing",
        "个 SKU·天无存档预测，未计入",
        "SKU-days without a stored forecast, left out",
    ),
    (
        "dashboard.dispute_response",
        "争议：30 分钟内响应 · 2 小时内照片核查",
        "Disputes: responded within 30 min · photos inspected within 2 h",
    ),
    (
        "dashboard.disputes_target",
        "响应 30 分钟 / 照片核查 2 小时 / 结案 24 小时",
        "response 30 min / photo check 2 h / settled 24 h",
    ),
    ("dashboard.handovers", "提货交付单数", "Handovers"),
    ("dashboard.receipts", "收货行数", "Receipt lines"),
    (
        "dashboard.heat_map",
        "每小时交付量（星期 × 小时，用于排班）",
        "Handovers per hour (weekday × hour, for rosters)",
    ),
    ("dashboard.hour", "时", "h"),
    ("dashboard.weekdays", "周一 … 周日", "Monday … Sunday"),
    ("dashboard.held_lines", "待处理的扣留行", "Lines held now"),
    (
        "dashboard.none_held",
        "没有扣留中的货。",
        "Nothing is held.",
    ),
    ("dashboard.col.delivery", "到货单", "Delivery"),
    ("dashboard.col.lot", "批次", "Lot"),
    ("dashboard.col.quantity", "数量", "Quantity"),
    ("dashboard.col.since", "扣留自", "Held since"),
    // Deliveries on time on the dashboard.
    (
        "dashboard.deliveries_on_time",
        "到货准时率",
        "Deliveries on time",
    ),
    ("dashboard.deliveries_within", "允许偏差 ±", "within ±"),
    ("dashboard.minutes", "分钟", "min"),
    ("dashboard.deliveries_early", "早到", "early"),
    ("dashboard.deliveries_late", "迟到", "late"),
    (
        "dashboard.deliveries_never",
        "当天未到",
        "not received that day",
    ),
    ("dashboard.deliveries_waiting", "待到", "still expected"),
    // Stock and alerts screen.
    ("stock.title", "库存与预警", "Stock and alerts"),
    // The import page (supervisors).
    ("import.title", "导入文件", "Import files"),
    (
        "import.help",
        "选择中心系统格式的 JSON 文件（docs/mqtt.md 中的命令）。文件有任何错误时会全部列出，且不导入任何内容。",
        "Pick a JSON file in central's command shape (docs/mqtt.md). Any error in it is listed and then nothing is imported.",
    ),
    ("import.kind.sku_upsert", "商品资料", "SKU master data"),
    ("import.kind.pickup_order", "取货订单", "Pickup orders"),
    (
        "import.kind.delivery_manifest",
        "到货单",
        "Delivery manifest",
    ),
    ("import.link", "导入文件", "Import files"),
    (
        "import.unknown_kind",
        "无法识别的文件类型：请从页面上的按钮选择。",
        "Unknown kind of file: use one of the page's buttons.",
    ),
    (
        "import.not_text",
        "这不是文本文件：请选择 JSON 文件。",
        "This is not a text file: pick a JSON file.",
    ),
    (
        "import.not_commands",
        "文件里没有中心系统格式的命令（需要 kind 字段），未导入任何内容。",
        "The file holds no commands in central's shape (they need a `kind`); nothing was imported.",
    ),
    (
        "import.not_json",
        "文件不是有效的 JSON，未导入任何内容：",
        "The file is not valid JSON; nothing was imported:",
    ),
    // A photo from the receiving tablet's camera.
    ("receiving.upload.button", "📷 拍照检查", "📷 Take a photo"),
    (
        "receiving.upload.no_model",
        "本设备未配置图像检查，无法检查照片：请用台秤旁的相机或联系技术人员。",
        "This hub has no image check configured; use the bench camera or call the technician.",
    ),
    (
        "receiving.upload.not_image",
        "这不是照片（只接受 JPEG 或 PNG）：请重新拍照。",
        "That is not a photo (JPEG or PNG only): take the photo again.",
    ),
    (
        "receiving.upload.too_large",
        "照片文件太大：请在相机设置中选择较小的尺寸后重拍。",
        "The photo file is too large: choose a smaller size in the camera settings and retake it.",
    ),
    (
        "receiving.upload.bomb",
        "照片尺寸异常，拒绝处理（可能是恶意文件）：请重新拍照。",
        "The photo claims impossible dimensions and was refused (possibly a malicious file): retake it.",
    ),
    (
        "receiving.upload.corrupt",
        "照片已损坏或不完整：请重新拍照。",
        "The photo is corrupt or incomplete: take it again.",
    ),
    (
        "receiving.upload.failed",
        "照片暂时无法检查：请稍后再试，或联系技术人员。",
        "The photo cannot be checked right now: try again shortly or call the technician.",
    ),
    // One SKU's days (the dashboard's drill-down).
    ("drill.title", "单品明细", "SKU detail"),
    ("drill.day", "日期", "Day"),
    ("drill.sold", "每日交付", "Handed over a day"),
    ("drill.forecast", "当日预测", "Forecast for the day"),
    ("drill.error", "偏差", "Difference"),
    ("drill.state", "状态", "State"),
    ("drill.stocked_out", "断货", "ran out"),
    ("drill.not_listed", "未上架", "not listed"),
    (
        "drill.note",
        "预测为设备每天首次检查时保存的次日预测；断货日的交付量只是需求的下限，不计入预测偏差。",
        "Forecasts are the ones the hub stored at each day's first check; on a day the SKU ran out, handovers are only a lower bound of demand and are not compared.",
    ),
    (
        "drill.unknown_sku",
        "没有这个商品：请从库存页面选择商品。",
        "There is no such SKU: pick one on the stock screen.",
    ),
    // What the stock screen's days of cover divide by.
    ("stock.cover.forecast", "按今日预测", "at today's forecast"),
    (
        "stock.cover.average",
        "按近 7 天平均",
        "at the 7-day average",
    ),
    // Stocktake and loss on the stock screen (supervisors).
    ("stock.correction.title", "盘点 / 报损", "Stocktake / loss"),
    ("stock.correction.lot", "批次", "Lot"),
    ("stock.correction.count", "盘点实数", "Counted"),
    ("stock.correction.loss", "报损数量", "Loss"),
    ("stock.correction.quantity", "数量", "Quantity"),
    ("stock.correction.reason", "报损原因", "Reason for a loss"),
    ("stock.correction.submit", "记录", "Record"),
    (
        "stock.correction.counted",
        "已记录盘点",
        "Stocktake recorded",
    ),
    ("stock.correction.lost", "已记录报损", "Loss recorded"),
    ("stock.loss.spoiled", "变质", "spoiled"),
    ("stock.loss.damaged", "破损", "damaged"),
    ("stock.loss.missing", "丢失", "missing"),
    ("stock.loss.expired", "过期", "expired"),
    (
        "stock.correction.form",
        "请选择批次，填写数量；报损还要选择原因。",
        "Pick a lot and enter a number; a loss also needs a reason.",
    ),
    (
        "stock.correction.negative_count",
        "盘点数不能是负数：请数货架上的实际数量（0 或以上）。",
        "A count cannot be negative: count what is on the shelf (0 or more).",
    ),
    (
        "stock.correction.absurd",
        "数量过大，不可能是真实数量：请检查输入。",
        "That number is too large to be real: check what was typed.",
    ),
    (
        "stock.correction.not_positive",
        "报损数量至少为 1。",
        "A loss must be at least 1.",
    ),
    (
        "stock.correction.more_than_on_hand",
        "报损数量超过该批次的现有库存：请先盘点该批次。",
        "The loss is more than this lot holds: count the lot instead.",
    ),
    (
        "stock.correction.nothing_to_correct",
        "盘点数与账面一致，无需调整。",
        "The count equals the books: nothing to correct.",
    ),
    (
        "stock.correction.unknown_lot",
        "账上没有这个批次：请从列表中选择批次。",
        "This lot is not in the ledger: pick a lot from the list.",
    ),
    (
        "stock.correction.ledger",
        "库存账拒绝了这次调整（例如该商品不允许负库存）。",
        "The ledger refused this correction (e.g. the SKU may not go negative).",
    ),
    // Acknowledging an alert on the stock screen.
    ("stock.ack.button", "知悉", "Acknowledge"),
    ("stock.ack.by", "已知悉：", "Acknowledged by"),
    // A line of alerts about many lots of one SKU, acknowledged together.
    ("stock.ack.all", "全部知悉", "Acknowledge all"),
    ("stock.ack.part", "已知悉", "acknowledged"),
    ("stock.lot", "批次", "lot"),
    ("stock.lots_listed", "个批次：", "lots:"),
    ("stock.lots_more", "另有", "and"),
    ("stock.lots_more_unit", "个批次", "more"),
    (
        "stock.ack.unknown",
        "无法识别这条预警，请刷新页面后再试。",
        "This alert is not recognised; reload the page and try again.",
    ),
    (
        "stock.ack.not_open",
        "这条预警已经解除，无需再确认。请刷新页面。",
        "This alert has already cleared; nothing to acknowledge. Reload the page.",
    ),
    (
        "stock.open_alerts",
        "未处理预警（最严重在前）",
        "Open alerts (worst first)",
    ),
    ("stock.no_alerts", "没有未处理的预警。", "No open alerts."),
    (
        "stock.alerts_more",
        "未列出的较轻预警（条）：",
        "Less severe alerts not listed:",
    ),
    (
        "stock.legend",
        "按站点日期判断临期/过期：",
        "Expiry judged on the site's day:",
    ),
    ("stock.near_days", "临期天数", "near-expiry days"),
    ("stock.tier", "级别", "Tier"),
    ("stock.tier.normal", "正常", "normal"),
    ("stock.on_hand", "现有库存", "On hand"),
    (
        "stock.cover",
        "可售天数（近 7 天平均）",
        "Days of cover (7-day average)",
    ),
    ("stock.request", "补货申请", "Replenishment"),
    ("stock.request.none", "无", "none"),
    (
        "stock.request.requested",
        "已申请，待总部确认",
        "requested, waiting for central",
    ),
    (
        "stock.request.acknowledged",
        "总部已确认",
        "acknowledged by central",
    ),
    (
        "stock.lots",
        "批次 · 到期日 · 数量",
        "Lot · expiry · quantity",
    ),
    (
        "stock.expired",
        "已过期（不可交付）",
        "expired (cannot be handed over)",
    ),
    ("stock.near", "临期", "near expiry"),
    ("stock.alert.stock_low", "库存不足", "Stock low"),
    ("stock.alert.near_expiry", "临期", "Near expiry"),
    (
        "stock.alert.quarantine_waiting",
        "扣留待处理",
        "Held stock waiting",
    ),
    ("stock.alert.device_offline", "设备离线", "Device offline"),
    ("stock.alert.outbox_backlog", "上传积压", "Uplink backlog"),
    (
        "stock.alert.disk_nearly_full",
        "存储将满",
        "Storage nearly full",
    ),
    (
        "stock.alert.pickup_lockout",
        "取货台已锁定",
        "Pickup counter locked",
    ),
    (
        "stock.alert.pickup_wrong_code_rate",
        "错误取货码过多",
        "Many wrong pickup codes",
    ),
    (
        "stock.alert.event_too_large",
        "事件过大未上传",
        "Event too large to send",
    ),
    ("stock.alert.stock_expired", "有过期库存", "Expired stock"),
    // What a site-wide alert is about (its subject is a word, not a SKU, lot or device id).
    ("stock.subject.uplink", "上传链路", "uplink"),
    ("stock.subject.database", "本机数据库", "local database"),
    ("stock.subject.site", "本站点", "this site"),
    (
        "stock.alert.store_write_failing",
        "数据写入失败",
        "Store writes failing",
    ),
    (
        "stock.todo.stock_low",
        "补货申请已自动发出；核对货架，必要时联系总部加急。",
        "A replenishment request was sent; check the shelf and call central if urgent.",
    ),
    (
        "stock.todo.near_expiry",
        "优先按先到期先出摆放，必要时促销或报损。",
        "Put it first on the shelf (FEFO); discount or record a loss if needed.",
    ),
    (
        "stock.todo.quarantine_waiting",
        "请主管在收货台放行或拒收扣留的货。",
        "A supervisor releases or rejects the held stock at the receiving bench.",
    ),
    (
        "stock.todo.device_offline",
        "检查扫码枪/秤的电源和连线。",
        "Check the scanner's or scale's power and cable.",
    ),
    (
        "stock.todo.outbox_backlog",
        "检查网络；恢复后会自动补传。",
        "Check the uplink; events are sent once it is back.",
    ),
    (
        "stock.todo.disk_nearly_full",
        "请联系技术人员清理存储。",
        "Ask the technician to free storage.",
    ),
    (
        "stock.todo.pickup_lockout",
        "请主管在取货台解锁。",
        "A supervisor unlocks the counter.",
    ),
    (
        "stock.todo.pickup_wrong_code_rate",
        "留意是否有人在猜取货码。",
        "Watch for someone guessing pickup codes.",
    ),
    (
        "stock.todo.event_too_large",
        "请联系技术人员。",
        "Tell the technician.",
    ),
    (
        "stock.todo.stock_expired",
        "把过期批次下架并登记报损。",
        "Take the expired lots off the shelf and record a loss.",
    ),
    (
        "stock.todo.store_write_failing",
        "立即联系技术人员；不要重启设备。",
        "Call the technician now; do not restart the box.",
    ),
    // Pickup counter: partial handover.
    (
        "pickup.hand_over_ticked",
        "只交付已核对商品",
        "Hand over ticked items only",
    ),
    (
        "pickup.partly_handed_over",
        "部分交付",
        "Partly handed over",
    ),
    // Pickup counter: live weighing of lines sold by weight.
    (
        "weigh.weighed",
        "称重 {w} 克 / 订购 {o} 克",
        "weighed {w} g / ordered {o} g",
    ),
    (
        "weigh.difference",
        "差价 {d}（按订单单价 {p}/千克）",
        "price difference {d} (order price {p}/kg)",
    ),
    (
        "weigh.no_price",
        "订单没有每千克单价：此处不计差价",
        "the order has no price per kg: no difference charged here",
    ),
    (
        "weigh.nothing_to_fill",
        "秤上 {g} 克：本订单没有待称重的商品",
        "{g} g on the scale: this order has no line left to weigh",
    ),
    // Pickup counter: the weight cross-check of a bagged order (错领).
    (
        "weigh.bag_mismatch",
        "重量不符，请核对",
        "Weight does not match: check the bag",
    ),
    ("weigh.bag_matches", "袋重相符", "Bag weight matches"),
    (
        "weigh.bag_figures",
        "秤上 {m} 克，应为 {e} 克（±{t} 克）",
        "{m} g on the scale, {e} g expected (±{t} g)",
    ),
    ("weigh.likely_missing", "可能少了：", "likely missing: "),
    ("weigh.likely_extra", "可能多了：", "likely extra: "),
    (
        "weigh.check_each",
        "请逐件核对袋中商品",
        "check each item in the bag",
    ),
    (
        "pickup.still_open",
        "尚未领取（再次扫码后交付）",
        "Still to collect (check the code again to hand over)",
    ),
    ("pickup.line", "第 {} 行", "line {}"),
    (
        "pickup.nothing_ticked",
        "还没有核对任何商品：请先扫描要交付的商品",
        "Nothing is ticked yet: scan the items to hand over first",
    ),
    (
        "handover.too_much_handed_over",
        "交付数量超过该行尚未领取的数量",
        "More asked for than is still open on that line",
    ),
    // Pickup counter: per-line refusals and undoing an order handed over in
    // parts.
    ("pickup.line_refused", "已拒收", "refused"),
    ("pickup.refuse_line", "拒收此行", "Refuse line"),
    ("pickup.refuse_which_line", "拒收哪一行", "Line refused"),
    ("refuse.to.stock", "退回库存", "back to stock"),
    ("refuse.to.loss", "报损", "written off"),
];

/// The fixed text `key` in `lang`; the key itself (so a missing text shows, and a test catches
/// it) when the catalogue has none.
pub fn text(key: &str, lang: Lang) -> &str {
    match TEXTS
        .iter()
        .chain(receiving::TEXTS)
        .find(|(k, _, _)| *k == key)
    {
        Some((_, zh, en)) => match lang {
            Lang::ZhCn => zh,
            Lang::En => en,
        },
        None => key,
    }
}

/// Why a handover was refused, from the workflow's refusal code
/// (`store::pickup_orders::HandoverError::code`); an unknown or missing code gets the general
/// sentence.
pub fn handover_refusal(code: Option<&str>, lang: Lang) -> &'static str {
    let key = code.map(|c| format!("handover.{c}"));
    TEXTS
        .iter()
        .find(|(k, _, _)| Some(*k) == key.as_deref())
        .or_else(|| TEXTS.iter().find(|(k, _, _)| *k == "handover.refused"))
        .map(|(_, zh, en)| match lang {
            Lang::ZhCn => *zh,
            Lang::En => *en,
        })
        .unwrap_or_default()
}

/// A refused handover for a person: a closed order says when and where in the site's zone
/// (`already collected at … at station …`), in English the store's own sentence, otherwise the
/// refusal code's text.
pub fn handover_error(
    error: &crate::store::pickup_orders::HandoverError,
    lang: Lang,
    zone: chrono_tz::Tz,
) -> String {
    use crate::store::pickup_orders::HandoverError;
    match (error, lang) {
        (HandoverError::NotOpen { check, .. }, _) => code_check(check, lang, zone),
        (_, Lang::En) => error.to_string(),
        (_, Lang::ZhCn) => handover_refusal(Some(&error.code()), lang).to_owned(),
    }
}

/// One problem of an import file for the person who uploaded it: where in the file, what is
/// wrong and what to do, in their language. The decoder's own detail stays as it is (field
/// names are the file's), with the common serde sentences worded in Chinese.
pub fn import_problem(problem: &crate::imports::Problem, lang: Lang) -> String {
    use crate::imports::ProblemKind;
    if lang == Lang::En {
        return problem.to_string();
    }
    let kind = |k: &str| {
        let key = format!("import.kind.{k}");
        if has(&key) {
            text(&key, lang).to_owned()
        } else {
            format!("`{k}`")
        }
    };
    let place = match &problem.id {
        Some(id) => format!("第 {} 条命令（编号 {id}）", problem.number),
        None => format!("第 {} 条命令", problem.number),
    };
    match &problem.what {
        ProblemKind::NotACommand { reason } => format!(
            "{place}：不是中心系统格式的命令，请按 docs/mqtt.md 改正（{}）",
            serde_reason_zh(reason)
        ),
        ProblemKind::WrongKind { found, expected } => format!(
            "{place}：这是{}命令，本文件只能有{}命令；请分开上传",
            kind(found),
            kind(expected)
        ),
        ProblemKind::BadBody { key, reason } => format!(
            "{place}（{key}）：内容不符合要求，请改正后重新上传（{}）",
            serde_reason_zh(reason)
        ),
    }
}

/// The decoders' usual sentences in Chinese (serde's `missing field`, `unknown field`,
/// `unknown variant`, `invalid type`, the envelope's `missing or invalid "x"`); any other
/// reason is kept as it is, after "原因：".
fn serde_reason_zh(reason: &str) -> String {
    let field = |prefix: &str| {
        reason
            .find(prefix)
            .map(|at| &reason[at + prefix.len()..])
            .and_then(|rest| rest.split('`').next())
            .map(str::to_owned)
    };
    if let Some(f) = field("missing field `") {
        format!("缺少字段 `{f}`")
    } else if let Some(f) = field("unknown field `") {
        format!("多了不认识的字段 `{f}`")
    } else if let Some(v) = field("unknown variant `") {
        format!("`{v}` 不是此字段允许的取值。原因：{reason}")
    } else if let Some(f) = reason
        .find("missing or invalid \"")
        .map(|at| &reason[at + "missing or invalid \"".len()..])
        .and_then(|rest| rest.split('"').next())
    {
        format!("缺少字段 \"{f}\" 或其值无效。原因：{reason}")
    } else if reason.contains("invalid type") || reason.contains("invalid value") {
        format!("有字段的值类型不对。原因：{reason}")
    } else {
        format!("原因：{reason}")
    }
}

/// Whether the catalogue has `key`.
pub fn has(key: &str) -> bool {
    TEXTS
        .iter()
        .chain(receiving::TEXTS)
        .any(|(k, _, _)| *k == key)
}

/// The refusal reasons a clerk picks from, as catalogue keys (`refuse.<code>`); the list and
/// where each reason's goods go are `hub_core::pickup`'s.
pub use hub_core::pickup::REFUSAL_REASONS;

/// `HH:MM` in the site's time zone.
pub fn local_time(at: Timestamp, zone: chrono_tz::Tz) -> String {
    chrono::DateTime::from_timestamp_millis(at.millis())
        .map(|t| t.with_timezone(&zone).format("%H:%M:%S").to_string())
        .unwrap_or_else(|| "?".into())
}

/// `YYYY-MM-DD HH:MM` in the site's time zone.
pub fn local_date_time(at: Timestamp, zone: chrono_tz::Tz) -> String {
    chrono::DateTime::from_timestamp_millis(at.millis())
        .map(|t| t.with_timezone(&zone).format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_else(|| "?".into())
}

/// How long ago, in words: `刚刚` / `just now`, `42 秒前` / `42 s ago`, …
pub fn ago(then: Timestamp, now: Timestamp, lang: Lang) -> String {
    let seconds = (now.millis() - then.millis()).max(0) / 1000;
    let (n, zh, en) = match seconds {
        0..=4 => {
            return match lang {
                Lang::ZhCn => "刚刚".into(),
                Lang::En => "just now".into(),
            };
        }
        5..=119 => (seconds, "秒前", "s ago"),
        120..=7199 => (seconds / 60, "分钟前", "min ago"),
        7200..=172_799 => (seconds / 3600, "小时前", "h ago"),
        _ => (seconds / 86_400, "天前", "d ago"),
    };
    match lang {
        Lang::ZhCn => format!("{n} {zh}"),
        Lang::En => format!("{n} {en}"),
    }
}

/// Green, amber or red for a code check.
pub fn code_check_tone(check: &CodeCheck) -> Tone {
    match check {
        CodeCheck::Found { .. } => Tone::Ok,
        CodeCheck::WrongCode
        | CodeCheck::LockedOut { .. }
        | CodeCheck::SiteLockedOut { .. }
        | CodeCheck::WrongSite { .. }
        | CodeCheck::Unreadable { .. } => Tone::Error,
        CodeCheck::Ambiguous { .. }
        | CodeCheck::Expired { .. }
        | CodeCheck::NotYetOpen { .. }
        | CodeCheck::AlreadyCollected { .. }
        | CodeCheck::Cancelled { .. }
        | CodeCheck::Refunded { .. }
        | CodeCheck::OnHold { .. } => Tone::Attention,
    }
}

/// The sentence for the clerk about a code check, in `lang`, times in the site's `zone`.
pub fn code_check(check: &CodeCheck, lang: Lang, zone: chrono_tz::Tz) -> String {
    let at = |t: &Timestamp| local_date_time(*t, zone);
    let zh = lang == Lang::ZhCn;
    match check {
        CodeCheck::Found { order_id } if zh => format!("订单 {order_id}：可以交付"),
        CodeCheck::Found { order_id } => format!("order {order_id}: hand it over"),
        CodeCheck::WrongCode if zh => "取货码错误：没有订单使用此取货码".into(),
        CodeCheck::WrongCode => "wrong code: no order has this code".into(),
        CodeCheck::Ambiguous { order_ids } if zh => format!(
            "多个订单使用此取货码（{}）：请扫描顾客的二维码",
            order_ids.join("、")
        ),
        CodeCheck::Ambiguous { order_ids } => format!(
            "several orders share this code ({}): scan the customer's QR code",
            order_ids.join(", ")
        ),
        CodeCheck::Expired {
            order_id,
            closed_at,
        } if zh => format!("订单 {order_id}：取货时间已于 {} 截止", at(closed_at)),
        CodeCheck::Expired {
            order_id,
            closed_at,
        } => format!(
            "order {order_id}: pickup window closed at {}",
            at(closed_at)
        ),
        CodeCheck::NotYetOpen { order_id, opens_at } if zh => {
            format!("订单 {order_id}：尚未到取货时间，{} 开始", at(opens_at))
        }
        CodeCheck::NotYetOpen { order_id, opens_at } => {
            format!("order {order_id}: not ready yet, opens at {}", at(opens_at))
        }
        CodeCheck::AlreadyCollected {
            order_id,
            at: when,
            station,
        } if station.is_empty() => {
            if zh {
                format!("订单 {order_id}：刚在另一取货台被领取（{}）", at(when))
            } else {
                format!(
                    "order {order_id}: just collected at another station ({})",
                    at(when)
                )
            }
        }
        CodeCheck::AlreadyCollected {
            order_id,
            at: when,
            station,
        } if zh => format!("订单 {order_id}：已于 {} 在 {station} 被领取", at(when)),
        CodeCheck::AlreadyCollected {
            order_id,
            at: when,
            station,
        } => format!(
            "order {order_id}: already collected at {} by station {station}",
            at(when)
        ),
        CodeCheck::Cancelled { order_id } if zh => format!("订单 {order_id}：已取消"),
        CodeCheck::Cancelled { order_id } => format!("order {order_id}: cancelled"),
        CodeCheck::Refunded { order_id } if zh => format!("订单 {order_id}：已退款"),
        CodeCheck::Refunded { order_id } => format!("order {order_id}: refunded"),
        CodeCheck::OnHold { order_id } if zh => {
            format!("订单 {order_id}：暂停交付，请联系团长")
        }
        CodeCheck::OnHold { order_id } => {
            format!("order {order_id}: on hold, ask the group leader")
        }
        CodeCheck::WrongSite { order_id, site } if zh => {
            format!("订单 {order_id}：属于站点 {site}，不在本站取货")
        }
        CodeCheck::WrongSite { order_id, site } => {
            format!("order {order_id}: belongs to site {site}, not this one")
        }
        CodeCheck::LockedOut { until } if zh => format!(
            "错误取货码过多，本取货台已锁定至 {}；主管可在本平板登录后点击“解除锁定”",
            at(until)
        ),
        CodeCheck::LockedOut { until } => format!(
            "this station is locked after too many wrong codes, until {}; a supervisor can sign in on the tablet and tap “Unlock the station”",
            at(until)
        ),
        CodeCheck::SiteLockedOut { until } if zh => format!(
            "本小时错误取货码过多，所有取货台暂停查询至 {}；主管可在平板上登录后解除",
            at(until)
        ),
        CodeCheck::SiteLockedOut { until } => format!(
            "code checks are paused at every station after too many wrong codes this hour, until {}; a supervisor can sign in on a tablet and lift it",
            at(until)
        ),
        CodeCheck::Unreadable { problem } => code_problem(*problem, lang),
    }
}

fn code_problem(problem: CodeProblem, lang: Lang) -> String {
    let zh = lang == Lang::ZhCn;
    match problem {
        CodeProblem::Empty if zh => "未输入取货码".into(),
        CodeProblem::Empty => "no code entered".into(),
        CodeProblem::TooLong { max } if zh => format!("这不是取货码（超过 {max} 个字符）"),
        CodeProblem::TooLong { max } => {
            format!("this is not a pickup code (longer than {max} characters)")
        }
        CodeProblem::NeedsOrderOrPhoneTail if zh => {
            "请扫描顾客的二维码，或同时输入取货码和订单号或手机尾号".into()
        }
        CodeProblem::NeedsOrderOrPhoneTail => {
            "scan the customer's QR code, or type the code with the order number or the phone tail"
                .into()
        }
        CodeProblem::BadPhoneTail if zh => "手机尾号是手机号码的最后 4 位数字".into(),
        CodeProblem::BadPhoneTail => {
            "the phone tail is the last 4 digits of the phone number".into()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hub_core::SiteId;

    #[test]
    fn an_import_files_problems_are_worded_in_chinese_with_their_place() {
        use crate::imports::{Problem, ProblemKind};
        let problem = |id: Option<&str>, what| Problem {
            number: 2,
            id: id.map(str::to_owned),
            what,
        };
        let wrong = problem(
            Some("c-2"),
            ProblemKind::WrongKind {
                found: "pickup_order",
                expected: "sku_upsert",
            },
        );
        assert_eq!(
            import_problem(&wrong, Lang::ZhCn),
            "第 2 条命令（编号 c-2）：这是取货订单命令，本文件只能有商品资料命令；请分开上传"
        );
        assert_eq!(
            import_problem(&wrong, Lang::En),
            "command 2 (id c-2): a `pickup_order` command; this file must hold `sku_upsert` commands"
        );
        let missing = problem(
            None,
            ProblemKind::BadBody {
                key: "OIL".into(),
                reason: "body: missing field `code` at line 1 column 2".into(),
            },
        );
        assert_eq!(
            import_problem(&missing, Lang::ZhCn),
            "第 2 条命令（OIL）：内容不符合要求，请改正后重新上传（缺少字段 `code`）"
        );
        let unknown = problem(
            None,
            ProblemKind::NotACommand {
                reason: "unknown field `extra`, expected one of `v`, `id`".into(),
            },
        );
        assert!(import_problem(&unknown, Lang::ZhCn).contains("多了不认识的字段 `extra`"));
        let variant = problem(
            None,
            ProblemKind::BadBody {
                key: "RICE".into(),
                reason: "unknown variant `bucket`, expected `piece` or `gram`".into(),
            },
        );
        assert!(import_problem(&variant, Lang::ZhCn).contains("`bucket` 不是此字段允许的取值"));
        let envelope = problem(
            None,
            ProblemKind::NotACommand {
                reason: r#"missing or invalid "id" (a string of 1..=128 characters)"#.into(),
            },
        );
        assert!(import_problem(&envelope, Lang::ZhCn).contains(r#"缺少字段 "id" 或其值无效"#));
        let other = problem(
            None,
            ProblemKind::BadBody {
                key: "D1".into(),
                reason: "it has no lines".into(),
            },
        );
        assert!(import_problem(&other, Lang::ZhCn).ends_with("（原因：it has no lines）"));
    }

    /// One of every code check outcome (a new variant must be added here: the match below
    /// does not compile without it).
    fn every_check() -> Vec<CodeCheck> {
        let t = Timestamp(1_764_000_000_000);
        let o = || "A1".to_owned();
        let all = vec![
            CodeCheck::Found { order_id: o() },
            CodeCheck::WrongCode,
            CodeCheck::Ambiguous {
                order_ids: vec![o(), "A2".into()],
            },
            CodeCheck::Expired {
                order_id: o(),
                closed_at: t,
            },
            CodeCheck::NotYetOpen {
                order_id: o(),
                opens_at: t,
            },
            CodeCheck::AlreadyCollected {
                order_id: o(),
                at: t,
                station: "pickup-1".into(),
            },
            CodeCheck::AlreadyCollected {
                order_id: o(),
                at: t,
                station: String::new(),
            },
            CodeCheck::Cancelled { order_id: o() },
            CodeCheck::Refunded { order_id: o() },
            CodeCheck::OnHold { order_id: o() },
            CodeCheck::WrongSite {
                order_id: o(),
                site: SiteId::new("other").unwrap(),
            },
            CodeCheck::LockedOut { until: t },
            CodeCheck::SiteLockedOut { until: t },
            CodeCheck::Unreadable {
                problem: CodeProblem::Empty,
            },
            CodeCheck::Unreadable {
                problem: CodeProblem::TooLong { max: 64 },
            },
            CodeCheck::Unreadable {
                problem: CodeProblem::NeedsOrderOrPhoneTail,
            },
            CodeCheck::Unreadable {
                problem: CodeProblem::BadPhoneTail,
            },
        ];
        for check in &all {
            // Exhaustive on purpose: a new outcome fails to compile here until listed above.
            match check {
                CodeCheck::Found { .. }
                | CodeCheck::WrongCode
                | CodeCheck::Ambiguous { .. }
                | CodeCheck::Expired { .. }
                | CodeCheck::NotYetOpen { .. }
                | CodeCheck::AlreadyCollected { .. }
                | CodeCheck::Cancelled { .. }
                | CodeCheck::Refunded { .. }
                | CodeCheck::OnHold { .. }
                | CodeCheck::WrongSite { .. }
                | CodeCheck::LockedOut { .. }
                | CodeCheck::SiteLockedOut { .. }
                | CodeCheck::Unreadable { .. } => {}
            }
        }
        all
    }

    fn has_han(s: &str) -> bool {
        s.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c))
    }

    #[test]
    fn a_lockout_says_a_supervisor_unlocks_on_the_tablet_and_names_no_command() {
        for until in [
            CodeCheck::LockedOut {
                until: Timestamp(0),
            },
            CodeCheck::SiteLockedOut {
                until: Timestamp(0),
            },
        ] {
            let zh = code_check(&until, Lang::ZhCn, chrono_tz::Asia::Shanghai);
            let en = code_check(&until, Lang::En, chrono_tz::Asia::Shanghai);
            assert!(!zh.contains("hub ") && !en.contains("hub "), "{zh} / {en}");
            assert!(zh.contains("平板") && zh.contains("主管"), "{zh}");
            assert!(en.contains("tablet") && en.contains("supervisor"), "{en}");
        }
    }

    #[test]
    fn every_code_check_has_a_chinese_and_an_english_sentence() {
        for check in every_check() {
            let zh = code_check(&check, Lang::ZhCn, chrono_tz::Asia::Shanghai);
            let en = code_check(&check, Lang::En, chrono_tz::Asia::Shanghai);
            assert!(has_han(&zh), "no Chinese for {check:?}: {zh}");
            assert!(
                !has_han(&en) && !en.is_empty(),
                "no English for {check:?}: {en}"
            );
            assert!(!zh.contains("{") && !en.contains("{"), "{zh} / {en}");
        }
    }

    #[test]
    fn every_item_check_code_has_a_chinese_and_an_english_sentence() {
        for code in crate::station_app::items::ITEM_CODES {
            let key = format!("item.{code}");
            assert!(has(&key), "no words for {key}");
            assert!(has_han(text(&key, Lang::ZhCn)), "{key}");
            assert!(!has_han(text(&key, Lang::En)), "{key}");
        }
    }

    #[test]
    fn every_handover_refusal_code_has_its_own_chinese_and_english_sentence() {
        for code in crate::store::pickup_orders::HandoverError::CODES {
            assert!(has(&format!("handover.{code}")), "no words for {code}");
            let zh = handover_refusal(Some(code), Lang::ZhCn);
            let en = handover_refusal(Some(code), Lang::En);
            assert!(has_han(zh), "{code}: {zh}");
            assert!(!has_han(en) && !en.is_empty(), "{code}: {en}");
        }
        assert_eq!(
            handover_refusal(Some("no.such.code"), Lang::ZhCn),
            handover_refusal(None, Lang::ZhCn)
        );
    }

    #[test]
    fn every_text_has_both_languages_and_keys_are_unique() {
        let all: Vec<_> = TEXTS.iter().chain(receiving::TEXTS).collect();
        for (i, (key, zh, en)) in all.iter().enumerate() {
            assert!(!zh.trim().is_empty() && !en.trim().is_empty(), "{key}");
            assert!(all[i + 1..].iter().all(|(k, _, _)| k != key), "{key} twice");
        }
        for reason in REFUSAL_REASONS {
            assert!(has(&format!("refuse.{reason}")), "refuse.{reason}");
        }
        assert_eq!(text("no.such.key", Lang::En), "no.such.key");
    }

    #[test]
    fn times_are_the_sites_local_time() {
        // 2025-11-24 16:00 UTC is 2025-11-25 00:00 in Shanghai.
        let t = Timestamp(1_764_000_000_000);
        assert_eq!(
            local_date_time(t, chrono_tz::Asia::Shanghai),
            "2025-11-25 00:00"
        );
        assert_eq!(local_date_time(t, chrono_tz::UTC), "2025-11-24 16:00");
        let locked = code_check(
            &CodeCheck::LockedOut { until: t },
            Lang::ZhCn,
            chrono_tz::Asia::Shanghai,
        );
        assert!(locked.contains("2025-11-25 00:00"), "{locked}");
    }
}
