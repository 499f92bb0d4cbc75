"""Default data: the unit tree and the 17 clue categories (PRODUCT.md), loaded idempotently."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Category, Offence, Unit, UnitKind

# (code, kind, parent, 中文, 조선어, English)
UNITS: tuple[tuple[str, UnitKind, str | None, str, str, str], ...] = (
    ("jilin", UnitKind.PROVINCE, None, "吉林省生态环境厅", "길림성 생태환경청",
     "Jilin Department of Ecology and Environment"),
    ("zhou", UnitKind.BUREAU, "jilin", "州本级", "주 본급", "Prefecture level"),
    ("yanji", UnitKind.COUNTY, "zhou", "延吉市", "연길시", "Yanji"),
    ("tumen", UnitKind.COUNTY, "zhou", "图们市", "도문시", "Tumen"),
    ("dunhua", UnitKind.COUNTY, "zhou", "敦化市", "돈화시", "Dunhua"),
    ("hunchun", UnitKind.COUNTY, "zhou", "珲春市", "훈춘시", "Hunchun"),
    ("longjing", UnitKind.COUNTY, "zhou", "龙井市", "룡정시", "Longjing"),
    ("helong", UnitKind.COUNTY, "zhou", "和龙市", "화룡시", "Helong"),
    ("wangqing", UnitKind.COUNTY, "zhou", "汪清县", "왕청현", "Wangqing"),
    ("antu", UnitKind.COUNTY, "zhou", "安图县", "안도현", "Antu"),
    # Receiving bodies (PRODUCT.md): they hold keys and liaison accounts of their own.
    ("psb_zhou", UnitKind.PUBLIC_SECURITY, None, "延边朝鲜族自治州公安局",
     "연변조선족자치주 공안국", "Yanbian Prefecture Public Security Bureau"),
    ("psb_yanji", UnitKind.PUBLIC_SECURITY, "psb_zhou", "延吉市公安局", "연길시 공안국",
     "Yanji Public Security Bureau"),
    ("psb_hunchun", UnitKind.PUBLIC_SECURITY, "psb_zhou", "珲春市公安局", "훈춘시 공안국",
     "Hunchun Public Security Bureau"),
    ("proc_zhou", UnitKind.PROCURATORATE, None, "延边朝鲜族自治州人民检察院",
     "연변조선족자치주 인민검찰원", "Yanbian Prefecture People's Procuratorate"),
    ("court_zhou", UnitKind.COURT, None, "延边朝鲜族自治州中级人民法院",
     "연변조선족자치주 중급인민법원", "Yanbian Intermediate People's Court"),
    ("cdi_zhou", UnitKind.DISCIPLINE, None, "延边州纪委监委", "연변주 규률검사위원회 감찰위원회",
     "Yanbian Commission for Discipline Inspection and Supervision"),
    ("natres_zhou", UnitKind.ADMIN_DEPT, None, "延边州自然资源局", "연변주 자연자원국",
     "Yanbian Natural Resources Bureau"),
    ("forestry_zhou", UnitKind.ADMIN_DEPT, None, "延边州林业局", "연변주 림업국",
     "Yanbian Forestry Bureau"),
    ("water_zhou", UnitKind.ADMIN_DEPT, None, "延边州水利局", "연변주 수리국",
     "Yanbian Water Resources Bureau"),
)

# (code, 中文, 조선어, English, legal basis) — editable by administrators.
OFFENCES: tuple[tuple[str, str, str, str, str], ...] = (
    ("pollution", "污染环境罪", "환경오염죄", "Environmental pollution",
     "《中华人民共和国刑法》第三百三十八条"),
    ("illegal_mining", "非法采矿罪", "불법채광죄", "Illegal mining",
     "《中华人民共和国刑法》第三百四十三条"),
    ("farmland", "非法占用农用地罪", "농용지 불법점용죄", "Illegal occupation of farmland",
     "《中华人民共和国刑法》第三百四十二条"),
    ("false_certificates", "提供虚假证明文件罪", "허위증명문건 제공죄",
     "Providing false certification documents", "《中华人民共和国刑法》第二百二十九条"),
    ("computer_systems", "破坏计算机信息系统罪", "콤퓨터정보체계 파괴죄",
     "Sabotage of computer information systems", "《中华人民共和国刑法》第二百八十六条"),
    ("extortion", "敲诈勒索罪", "공갈갈취죄", "Extortion", "《中华人民共和国刑法》第二百七十四条"),
    ("provocation", "寻衅滋事罪", "시비도발죄", "Picking quarrels and provoking trouble",
     "《中华人民共和国刑法》第二百九十三条"),
    ("organized_crime", "组织、领导、参加黑社会性质组织罪", "흑사회성질조직 조직·령도·참가죄",
     "Organising, leading or joining a mafia-type organisation",
     "《中华人民共和国刑法》第二百九十四条"),
    ("shielding", "包庇、纵容黑社会性质组织罪", "흑사회성질조직 비호·방임죄",
     "Shielding or conniving at a mafia-type organisation",
     "《中华人民共和国刑法》第二百九十四条"),
    ("abuse_of_power", "滥用职权罪", "직권람용죄", "Abuse of power",
     "《中华人民共和国刑法》第三百九十七条"),
    ("dereliction", "玩忽职守罪", "직무태만죄", "Dereliction of duty",
     "《中华人民共和国刑法》第三百九十七条"),
    ("illegal_logging", "滥伐林木罪", "림목람벌죄", "Illegal logging",
     "《中华人民共和国刑法》第三百四十五条"),
)

# (code, scope, usual receiver, 中文, 조선어, English, description zh, ko, en)
CATEGORIES: tuple[tuple[str, str, str, str, str, str, str, str, str], ...] = (
    ("P01", "province", UnitKind.PUBLIC_SECURITY,
     "非法倾倒、处置危险废物和固体废物", "위험페기물과 고체페기물의 불법투기·처리",
     "Illegal dumping or disposal of hazardous or solid waste",
     "工业废渣、废油、医疗废物等被偷倒、填埋或私自处置。",
     "공업페기물, 페유, 의료페기물 등을 몰래 버리거나 묻거나 처리하는 행위.",
     "Industrial residue, waste oil, medical waste dumped, buried or handled without permit."),
    ("P02", "province", UnitKind.PUBLIC_SECURITY,
     "自动监测数据造假、干扰监测设施", "자동감측자료 조작, 감측설비 방해",
     "Falsifying automatic monitoring data, tampering with monitors",
     "篡改、伪造在线监测数据，或干扰、破坏监测设备。",
     "온라인 감측자료를 고치거나 위조하고 감측설비를 방해·파손하는 행위.",
     "Altering or faking online monitoring data, or interfering with monitoring equipment."),
    ("P03", "province", UnitKind.PUBLIC_SECURITY,
     "环评、监测、验收等第三方服务机构弄虚作假", "환경평가·감측·검수 등 제3자 봉사기구의 허위조작",
     "Fraud by third-party service bodies (EIA, monitoring, acceptance)",
     "第三方机构出具虚假环评、监测或验收报告。",
     "제3자 기구가 허위 환경평가, 감측 또는 검수 보고서를 내는 행위.",
     "A third party issues false impact-assessment, monitoring or acceptance reports."),
    ("P04", "province", UnitKind.PUBLIC_SECURITY,
     "暗管偷排、渗坑排放、重金属超标排放", "암관 몰래배출, 스밈구뎅이 배출, 중금속 기준초과 배출",
     "Concealed discharge (hidden pipes, seepage pits), heavy-metal exceedance",
     "通过暗管、渗井、渗坑偷排污水，或重金属超标排放。",
     "암관, 스밈우물, 스밈구뎅이로 오수를 몰래 배출하거나 중금속을 기준 넘게 배출.",
     "Waste water let out through hidden pipes, wells or pits; heavy metals over the limit."),
    ("P05", "province", UnitKind.PUBLIC_SECURITY,
     "非法采砂、采矿、采石（“沙霸”“矿霸”）", "불법 모래채취·채광·채석(\"모래패\" \"광산패\")",
     "Illegal sand, ore or stone extraction (\"sand and mine bullies\")",
     "无证或超范围采砂、采矿、采石，以及背后的霸占势力。",
     "허가 없이 또는 범위를 넘어 모래·광물·돌을 캐는 행위와 그 배후세력.",
     "Extraction without or beyond a licence, and the gangs that control it."),
    ("P06", "province", UnitKind.PUBLIC_SECURITY,
     "强揽工程、垄断环保项目及垃圾清运砂石等市场、串通投标",
     "공사 강제도급, 환경보호사업 및 쓰레기운송·모래자갈 시장 독점, 담합입찰",
     "Strong-arming or monopolising environmental projects and markets, bid rigging",
     "以暴力或威胁强揽工程、垄断市场或串通投标。",
     "폭력이나 위협으로 공사를 따내거나 시장을 독점하거나 입찰을 담합하는 행위.",
     "Projects or markets taken by force or threat; collusive bidding."),
    ("P07", "province", UnitKind.PUBLIC_SECURITY,
     "暴力、威胁或“软暴力”阻挠执法、打击报复举报人",
     "폭력·위협 또는 \"연성폭력\"으로 법집행 방해, 제보자 보복",
     "Violence, threats or \"soft violence\" against enforcement or reporters",
     "阻挠环境执法，或对举报人进行威胁、报复。",
     "환경 법집행을 가로막거나 제보자를 위협·보복하는 행위.",
     "Obstructing environmental enforcement, or threatening or retaliating against reporters."),
    ("P08", "province", UnitKind.PUBLIC_SECURITY,
     "假借环保名义敲诈勒索企业", "환경보호 명의를 빌려 기업을 공갈·갈취",
     "Extortion of enterprises in the name of environmental protection",
     "冒用环保名义向企业索要钱财。",
     "환경보호를 빙자하여 기업에게 돈이나 재물을 요구하는 행위.",
     "Demanding money from enterprises under the pretext of environmental protection."),
    ("P09", "province", UnitKind.ADMIN_DEPT,
     "破坏自然保护区和生态保护红线区域", "자연보호구와 생태보호 붉은선 구역 파괴",
     "Damage to nature reserves and ecological red-line areas",
     "在自然保护区、生态红线内违法建设、开发或破坏。",
     "자연보호구나 생태보호 붉은선 안에서 불법 건설·개발·파괴.",
     "Illegal building, development or damage inside reserves or red-line areas."),
    ("P10", "province", UnitKind.DISCIPLINE,
     "公职人员充当“保护伞”、失职渎职", "공직자의 \"보호우산\"(비호) 노릇, 직무태만·직권람용",
     "Officials covering for offenders (\"protective umbrella\"), dereliction of duty",
     "公职人员包庇、纵容违法者，或不作为、乱作为。",
     "공직자가 위법자를 감싸거나 방임하고 직무를 다하지 않거나 함부로 행사하는 행위.",
     "Officials covering for offenders, or failing or abusing their duties."),
    ("Z01", "prefecture", UnitKind.ADMIN_DEPT,
     "河流断面水质超标及相关偷排", "하천 단면 수질 기준초과 및 관련 몰래배출",
     "River monitoring sections over standard, and the discharges behind them",
     "河流考核断面水质超标，以及造成超标的偷排行为。",
     "하천 평가단면의 수질이 기준을 넘는 문제와 그 원인이 되는 몰래배출.",
     "River sections failing water standards, and the hidden discharges that cause it."),
    ("Z02", "prefecture", UnitKind.ADMIN_DEPT,
     "秸秆露天焚烧", "짚 야외소각", "Open burning of straw",
     "在田间、路边露天焚烧秸秆。",
     "밭이나 길가에서 짚을 한데서 태우는 행위.",
     "Straw burnt in the open, in fields or by the road."),
    ("Z03", "prefecture", UnitKind.ADMIN_DEPT,
     "城市建成区新建或“死灰复燃”10蒸吨以下燃煤锅炉",
     "도시 건성구에 새로 짓거나 \"되살아난\" 10증기톤 이하 석탄보이라",
     "Coal boilers under 10 t/h built or revived in urban areas",
     "城市建成区内新建或已淘汰后又使用的小型燃煤锅炉。",
     "도시 건성구 안에 새로 놓거나 도태된 후 다시 쓰는 소형 석탄보이라.",
     "Small coal boilers newly built, or back in use after being phased out, in built-up areas."),
    ("Z04", "prefecture", UnitKind.ADMIN_DEPT,
     "“散乱污”企业", "\"산란오\" 기업(분산·무질서·오염 기업)",
     "Scattered, disorderly and polluting enterprises",
     "无手续、无治污设施、污染严重的小作坊、小企业。",
     "수속도 오염처리설비도 없이 심하게 오염시키는 작은 작업장과 기업.",
     "Small workshops without permits or pollution controls."),
    ("Z05", "prefecture", UnitKind.ADMIN_DEPT,
     "自然保护区“绿盾”行动点位整改不到位", "자연보호구 \"록순\" 행동 지점 정돈개혁 미흡",
     "Nature-reserve \"Green Shield\" sites not rectified",
     "“绿盾”检查发现的问题点位没有真正整改。",
     "\"록순\" 검사에서 드러난 문제 지점을 제대로 고치지 않은 경우.",
     "Problems found by Green Shield inspections left unfixed."),
    ("Z06", "prefecture", UnitKind.ADMIN_DEPT,
     "饮用水水源保护区违法违规问题", "음용수 수원보호구의 위법·위규 문제",
     "Violations in drinking-water source protection zones",
     "在饮用水水源保护区内排污、建设或从事污染活动。",
     "음용수 수원보호구 안에서 오염물 배출, 건설 또는 오염 활동.",
     "Discharges, building or polluting activity inside drinking-water protection zones."),
    ("Z07", "prefecture", UnitKind.ADMIN_DEPT,
     "破坏森林、草原、湿地生态", "삼림·초원·습지 생태 파괴",
     "Destruction of forest, grassland or wetland",
     "乱砍滥伐、毁林开垦、非法占用草原或湿地。",
     "마구 벌목하거나 숲을 밀어 개간하고 초원·습지를 불법 점용하는 행위.",
     "Illegal logging, clearing land, or occupying grassland or wetland."),
)


def seed(session: Session) -> None:
    """Insert the default units, categories and holiday years that are missing; never
    overwrite edits."""
    from referral.calendar import seed_calendar

    seed_calendar(session)
    by_code = {u.code: u for u in session.scalars(select(Unit))}
    for code, kind, parent, zh, ko, en in UNITS:
        if code not in by_code:
            unit = Unit(code=code, kind=kind, name_zh=zh, name_ko=ko, name_en=en,
                        parent=by_code.get(parent) if parent else None)
            session.add(unit)
            by_code[code] = unit
    known_offences = set(session.scalars(select(Offence.code)))
    for code, zh, ko, en, basis in OFFENCES:
        if code not in known_offences:
            session.add(Offence(code=code, name_zh=zh, name_ko=ko, name_en=en, basis=basis))
    existing = set(session.scalars(select(Category.code)))
    for order, (code, scope, receiver, zh, ko, en, dzh, dko, den) in enumerate(CATEGORIES):
        if code not in existing:
            session.add(Category(code=code, version=1, current=True, scope=scope,
                                 sort_order=order, usual_receiver=receiver, name_zh=zh,
                                 name_ko=ko, name_en=en, description_zh=dzh,
                                 description_ko=dko, description_en=den))
    session.commit()
