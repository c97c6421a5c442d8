"""Vocabularies of the synthetic population: Han names, roads, compounds, firms, schools, hometowns.

Names are handled as token ids into one vocabulary (surnames, given-name characters and their
homophones and traditional forms), so the generator can build, misspell and render millions of
names with array operations. Every string here is encodable in GBK, the encoding of two department
files (checked by the tests).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

# Surname frequencies (per cent of the national population, rounded), and the boost for families
# born in Ningbo, where 陈, 应, 俞, 邬, 竺, 鲍, 屠 and friends are far commoner than nationally.
SURNAMES = (
    "王7.1 李7.0 张6.7 刘5.4 陈5.3 杨3.1 黄2.2 赵2.0 吴2.0 周1.9 徐1.7 孙1.5 马1.3 朱1.3 "
    "胡1.3 郭1.1 何1.1 高1.1 林1.1 罗0.9 郑0.9 梁0.9 谢0.8 宋0.8 唐0.8 许0.7 韩0.7 冯0.7 "
    "邓0.7 曹0.7 彭0.6 曾0.6 肖0.6 田0.6 董0.5 袁0.5 潘0.5 于0.5 蒋0.5 蔡0.5 余0.5 杜0.5 "
    "叶0.5 程0.5 苏0.4 魏0.4 吕0.4 丁0.4 任0.4 沈0.4 姚0.4 卢0.4 姜0.4 崔0.3 钟0.3 谭0.3 "
    "陆0.3 汪0.3 范0.3 金0.3 石0.3 廖0.3 贾0.3 夏0.3 韦0.3 付0.3 方0.3 白0.3 邹0.3 孟0.3 "
    "熊0.2 秦0.2 邱0.2 江0.2 尹0.2 薛0.2 闫0.2 段0.2 雷0.2 侯0.2 龙0.2 史0.2 陶0.2 黎0.2 "
    "贺0.2 顾0.2 毛0.2 郝0.2 龚0.2 邵0.2 万0.2 钱0.2 严0.2 覃0.1 武0.1 戴0.1 莫0.1 孔0.1 "
    "向0.1 汤0.1 应0.1 俞0.1 邬0.05 竺0.03 鲍0.05 屠0.04 楼0.05 裘0.03 虞0.04 柴0.05 舒0.05 "
    "翁0.05 娄0.03 忻0.02 乐0.03 包0.08 施0.1 章0.1 傅0.1 萧0.05 欧阳0.02 司马0.005 诸葛0.004 "
    "上官0.005 端木0.002"
)
NINGBO_BOOST = {
    "陈": 2.0, "王": 1.2, "张": 1.1, "周": 1.6, "徐": 1.6, "林": 1.5, "胡": 1.6, "叶": 1.8,
    "应": 8.0, "俞": 6.0, "毛": 2.5, "邵": 2.5, "金": 2.5, "施": 3.0, "邬": 10.0, "竺": 10.0,
    "鲍": 6.0, "屠": 8.0, "楼": 5.0, "裘": 6.0, "虞": 5.0, "柴": 3.0, "舒": 3.0, "翁": 4.0,
    "娄": 4.0, "忻": 10.0, "乐": 5.0, "包": 3.0, "章": 3.0, "史": 3.0, "董": 2.0, "沈": 2.0,
    "蒋": 2.0, "孙": 1.5, "朱": 1.5, "戴": 3.0, "钱": 2.0, "范": 2.0, "方": 2.0, "傅": 3.0,
    "李": 0.6, "刘": 0.4, "赵": 0.6, "杨": 0.8, "马": 0.5, "郭": 0.5, "高": 0.6,
}  # fmt: skip

# Given-name characters by era of birth and sex; earlier characters are commoner.
GIVEN = {
    (
        "old",
        "m",
    ): "国建华明军伟平林德荣福根生海忠宝祥文志成水金发兴永康庆才富云龙春强勇刚良昌贵仁义达清正炳森法",
    ("old", "f"): "秀英华兰芳珍美玉凤桂琴娣翠花梅莲菊娟萍月素云丽霞红敏仙彩香爱妹芬雅淑",
    ("mid", "m"): "伟强磊军勇杰涛斌超明刚平辉鹏华飞鑫波宁亮峰俊健浩晓东海洋林凯龙锋剑立新佳宇晨",
    ("mid", "f"): "丽娜敏静燕艳娟霞婷芳玲琳颖倩雪慧洁莉萍红晶蕾婕佳璐丹瑶琼妍晓春",
    ("new", "m"): "浩宇轩子梓睿博涵晨泽俊皓辰然一铭航嘉奕昊哲熙杰逸锦宸宁煜骏天",
    ("new", "f"): "欣怡涵子梓雨萱诗可馨悦琪彤思佳语若瑶雅梦婉晴妍依菲紫嘉静钰",
}
ERAS = ("old", "mid", "new")  # born before 1975, 1975-1994, 1995 on
ERA_BOUNDS = (1975, 1995)
SINGLE_GIVEN = {"old": 0.25, "mid": 0.15, "new": 0.08}  # share of one-character given names

# Same-pinyin (same tone) groups, checked with pypinyin and pruned to characters seen in names.
HOMOPHONES = (
    "宾彬斌滨 博伯 宸晨辰臣 方芳 菲霏飞妃 峰锋枫丰 凤奉 桂贵 涵晗寒韩 杭航 昊浩灏皓颢 "
    "宏弘泓洪红虹鸿 慧惠蕙卉 佳嘉家珈 健剑建 婕杰洁捷 京晶菁 婧静靖敬 娟涓鹃 俊骏 磊蕾垒 "
    "丽莉俐利力立 林琳霖麟 玲灵翎铃龄 敏闵 明铭 娜纳 宁凝柠 平萍苹屏 琪祺齐奇麒淇骐 倩茜 "
    "瑞睿芮锐 诗施师 思斯丝 涛滔韬 婷亭庭霆廷 彤桐童 伟炜玮纬 霞侠 晓筱 欣新昕歆馨心鑫辛芯 "
    "萱轩宣暄 妍颜研 燕艳雁彦 瑶尧遥姚 依伊衣 怡仪宜贻 逸奕亦艺毅益翼义谊忆 英瑛莺鹰 颖影 "
    "勇永 宇雨语羽禹予 钰玉煜昱毓誉郁育 悦月越岳跃 梓紫子 "
    "张章 余俞于虞 姜江 谭覃 闫严 楼娄 杨阳洋 黄皇 周舟 刘留 胡湖 程成 肖萧 付傅 邱秋 陆路 "
    "钟忠 施师 应英"
)
# Simplified → traditional for the name characters that have a distinct traditional form.
TRADITIONAL = (
    "张張 刘劉 陈陳 杨楊 黄黃 赵趙 吴吳 孙孫 马馬 罗羅 郑鄭 谢謝 许許 韩韓 冯馮 邓鄧 蒋蔣 "
    "叶葉 苏蘇 吕呂 卢盧 钟鍾 谭譚 陆陸 贾賈 韦韋 邹鄒 闫閆 龙龍 贺賀 顾顧 龚龔 万萬 钱錢 "
    "严嚴 汤湯 应應 邬鄔 鲍鮑 楼樓 娄婁 乐樂 欧歐 阳陽 马馬 诸諸 萧蕭 "
    "国國 华華 伟偉 军軍 刚剛 贵貴 义義 发發 兴興 庆慶 宝寶 荣榮 凤鳳 兰蘭 丽麗 红紅 爱愛 "
    "涛濤 杰傑 辉輝 鹏鵬 飞飛 晓曉 东東 凯凱 锋鋒 剑劍 静靜 艳艷 颖穎 洁潔 瑶瑤 琼瓊 轩軒 "
    "泽澤 铭銘 锦錦 宁寧 骏駿 诗詩 悦悅 语語 梦夢 钰鈺 云雲 强強 达達 莲蓮 纬緯 纳納 玮瑋 "
    "炜煒 鸿鴻 伦倫 灵靈 龄齡 铃鈴 颜顏 艺藝 谊誼 忆憶 莺鶯 鹰鷹 亿億 岁歲 庄莊 范範 "
)
HANS_TO_HANT_ADDRESS = {"号": "號", "区": "區", "县": "縣", "乡": "鄉", "镇": "鎮", "宁": "寧"}

# Ethnic groups (GB/T 3304 name): ~1% of the population are not Han; 畲族 is Zhejiang's own.
MINORITIES = (
    ("畲族", 0.25), ("土家族", 0.15), ("苗族", 0.15), ("回族", 0.1), ("壮族", 0.1),
    ("布依族", 0.08), ("满族", 0.07), ("侗族", 0.05), ("彝族", 0.05),
)  # fmt: skip

# Roads: a root, an optional direction, a kind. Roots are Ningbo-flavoured place words.
ROAD_ROOTS = (
    "中山 解放 甬江 四明 天童 鄞县 百丈 兴宁 曙光 灵桥 药行 开明 镇明 柳汀 环城 永丰 望春 翠柏 "
    "丽园 南站 机场 新典 桑田 江南 长江 泰山 明州 县前 日新 大庆 人民 新河 丽江 双东 庄桥 育才 "
    "学士 嵩江 宁穿 福明 江东 东胜 惊驾 彩虹 沧海 钱湖 世纪 院士 江澄 民安 环湖 首南 泰康 前河 "
    "启明 嘉会 宝善 黄山 长阳 太河 中兴 通途 康庄 洪塘 湖西 文教 迎凤 芝兰 雁苍 环镇 金谷 潘火 "
    "鄞城 学府 滨江 海晏 银杏 樟树 梅园 桃源 杏林 云林 龙潭 凤凰 青林 紫云 白鹤 月湖 天一 鼓楼 "
    "孝闻 苍水 槐树 车轿 和义 江厦 战船 后塘 前塘 石碶 古林 高桥 横街 集士 鄞江 章水 龙观 姚江 "
    "慈城 骆驼 九龙 新碶 大碶 霞浦 柴桥 春晓 梅山 白峰 溪口 锦屏 岳林 西坞 莼湖 丹城 跃龙 桃源 "
    "阳明 凤山 兰江 梨洲 浒山 白沙 坎墩 周巷 观海 丹东 石浦 西周 大徐 前童 长街 力洋 梅林 "
)
ROAD_DIRECTIONS = "东西南北中"
ROAD_KINDS = (("路", 0.66), ("街", 0.12), ("大道", 0.06), ("巷", 0.11), ("弄", 0.05))
DIRECTION_SHARE = 0.3

COMPOUND_FIRST = "天明锦丽紫翠春金阳和书恒银东新海樱桂怡华嘉绿盛泰安康福瑞祥荣江湖月星云景雅君御香兰梅竹松柏枫桃清澜港湾"
COMPOUND_SECOND = "一湖绣园薇柏江色光美香威亿城晏花景府和城都庭苑林水岸湾苑秀悦庭邦豪馨居晖源"
COMPOUND_KINDS = (
    ("小区", 0.2), ("新村", 0.12), ("花园", 0.16), ("家园", 0.14), ("苑", 0.12), ("名苑", 0.05),
    ("雅苑", 0.04), ("华庭", 0.05), ("嘉园", 0.04), ("公寓", 0.04), ("府", 0.02), ("山庄", 0.02),
)  # fmt: skip
COMMERCIAL_KINDS = (
    ("大厦", 0.35), ("商务楼", 0.15), ("广场", 0.2), ("中心", 0.1), ("商城", 0.1), ("科技园", 0.1),
)  # fmt: skip

# Firms: a trade name (字号) from two of these characters, an industry term, a legal form.
TRADE_CHARS = (
    "甬华信恒通金盛博远锦程达鑫源瑞丰祥宏泰隆凯昌德邦诚嘉利兴海天宇众合力创新联汇东方明光普康"
    "安福永和正中百千万佳美尚品优易云智慧捷速润泽晟昊亿辉腾旭升舜禾欧雅顺赛"
)
# (GB/T 4754 门类, name terms, weight); hazardous sectors feed the 应急管理局 list.
INDUSTRIES = (
    (
        "制造业",
        "机械 模具 电器 塑料制品 五金 服饰 纺织 汽车零部件 电子 轴承 新材料 文具 家电",
        0.26,
    ),
    ("制造业/化工", "化工 涂料 新能源 精细化工", 0.03),
    ("批发和零售业", "商贸 贸易 进出口 电子商务 国际贸易", 0.27),
    ("信息传输、软件和信息技术服务业", "信息技术 网络科技 软件", 0.06),
    ("科学研究和技术服务业", "科技 检测技术 环保科技", 0.08),
    ("住宿和餐饮业", "餐饮管理 酒店管理", 0.04),
    ("建筑业", "建设 建筑工程 装饰工程", 0.06),
    ("交通运输、仓储和邮政业", "物流 货运代理 供应链管理", 0.06),
    ("租赁和商务服务业", "企业管理咨询 广告 人力资源", 0.08),
    ("房地产业", "房地产开发 物业管理", 0.02),
    ("文化、体育和娱乐业", "文化传媒 体育发展", 0.03),
    ("农、林、牧、渔业", "农业开发 水产养殖", 0.01),
)
SHOPS = (
    ("住宿和餐饮业", "餐饮店 小吃店 面馆 早餐店 快餐店"),
    ("批发和零售业", "便利店 超市 五金店 水果店 服装店 副食品店 烟酒店 建材店"),
    ("居民服务、修理和其他服务业", "理发店 美容店 汽车修理店 家电维修部 洗衣店"),
)
COOP_PRODUCTS = "果蔬 水稻 茶叶 杨梅 蔬菜 水产 竹笋 草莓 柑橘 花卉"
SOCIETY_TOPICS = (
    "书法家 摄影家 作家 企业家 个体劳动者 青年企业家 老年体育 围棋 篮球 慈善 志愿者 家庭教育 "
    "物流 电子商务 模具 服装 餐饮 汽车 会计 养老服务 社会工作 文化 民间艺术 钓鱼"
)
SOCIETY_KINDS = "协会 商会 促进会 研究会 联合会"
NONPROFIT_KINDS = "幼儿园 培训学校 养老服务中心 社会工作服务中心 居家养老服务中心 康复中心"

SCHOOL_KINDS = (("小学", 6, 11), ("中学", 12, 14), ("高级中学", 15, 17))

# Hometown addresses of people registered elsewhere: town and village names from these syllables.
PLACE_SYLLABLES = (
    "杨桥王庄李集张湾刘店陈岗周寨吴圩孙铺马楼朱巷胡营高桥林场罗坪郑埠梁沟谢家宋河唐坊许村韩山冯塘"
    "邓湖曹庙彭岭曾坝田畈董岙袁岭潘堰于冲蒋坳蔡店余岗杜桥程庄苏集魏楼吕营丁湾任寨沈庄姚河卢岭姜"
    "店崔庄钟楼谭家陆圩汪村范桥金山石门廖坪贾寨夏店韦村方岭白马邹集孟楼熊家秦岭邱村江口尹庄薛湾"
)

PHONE_PREFIXES = (
    "130",
    "131",
    "132",
    "133",
    "134",
    "135",
    "136",
    "137",
    "138",
    "139",
    "147",
    "150",
    "151",
    "152",
    "153",
    "155",
    "156",
    "157",
    "158",
    "159",
    "166",
    "173",
    "175",
    "176",
    "177",
    "178",
    "180",
    "181",
    "182",
    "183",
    "184",
    "185",
    "186",
    "187",
    "188",
    "189",
    "191",
    "193",
    "195",
    "198",
    "199",
)

DIGITS_CN = "〇一二三四五六七八九"


def chinese_numeral(n: int) -> str:
    """1–999 as written in addresses: 3 → 三, 12 → 十二, 21 → 二十一, 105 → 一百零五."""
    if n <= 0:
        return DIGITS_CN[0]
    hundreds, rest = divmod(n, 100)
    tens, ones = divmod(rest, 10)
    out = ""
    if hundreds:
        out += DIGITS_CN[hundreds] + "百"
        if rest and tens == 0:
            return out + "零" + DIGITS_CN[ones]
    if tens:
        out += ("" if tens == 1 and not hundreds else DIGITS_CN[tens]) + "十"
    if ones:
        out += DIGITS_CN[ones]
    return out


def _weighted(spec: str) -> tuple[list[str], list[float]]:
    names, weights = [], []
    for item in spec.split():
        cut = next(i for i, ch in enumerate(item) if ch.isdigit())
        names.append(item[:cut])
        weights.append(float(item[cut:]))
    return names, weights


@dataclass(frozen=True, slots=True)
class NameVocab:
    """Token vocabulary for names and the arrays that sample, misspell and convert them."""

    tokens: tuple[str, ...]
    surnames: IntArray  # token ids
    surname_p_local: FloatArray
    surname_p_other: FloatArray
    given: dict[tuple[str, str], tuple[IntArray, FloatArray]]  # (era, sex) → ids, probabilities
    given_all: IntArray  # every given-name token, the pool for typos
    homophones: IntArray  # [token, k] → a homophone id (-1 padded)
    homophone_count: IntArray
    traditional: IntArray  # token → its traditional form, or itself


@cache
def name_vocab() -> NameVocab:
    surnames, weights = _weighted(SURNAMES)
    tokens: list[str] = []
    index: dict[str, int] = {}

    def tok(text: str) -> int:
        if text not in index:
            index[text] = len(tokens)
            tokens.append(text)
        return index[text]

    surname_ids = np.array([tok(s) for s in surnames], dtype=np.int64)
    w = np.array(weights)
    boost = np.array([NINGBO_BOOST.get(s, 1.0) for s in surnames])
    given: dict[tuple[str, str], tuple[IntArray, FloatArray]] = {}
    for key, chars in GIVEN.items():
        ids = np.array([tok(c) for c in chars], dtype=np.int64)
        p = 1.0 / (np.arange(len(ids)) + 8.0)  # a gentle Zipf: common characters first
        given[key] = (ids, p / p.sum())
    given_all = np.unique(np.concatenate([ids for ids, _ in given.values()]))
    groups = [[tok(c) for c in g] for g in HOMOPHONES.split()]
    pairs = [(tok(p[0]), tok(p[1:])) for p in TRADITIONAL.split()]
    # compound surnames convert character by character
    for s in surnames:
        if len(s) > 1:
            hant = "".join(next((p[1:] for p in TRADITIONAL.split() if p[0] == c), c) for c in s)
            if hant != s:
                pairs.append((tok(s), tok(hant)))
    n = len(tokens)
    mates: list[set[int]] = [set() for _ in range(n)]
    for g in groups:
        for t in g:
            mates[t].update(x for x in g if x != t)
    width = max(1, max(len(m) for m in mates))
    homophones = np.full((n, width), -1, dtype=np.int64)
    counts = np.zeros(n, dtype=np.int64)
    for t, m in enumerate(mates):
        ordered = sorted(m)
        homophones[t, : len(ordered)] = ordered
        counts[t] = len(ordered)
    traditional = np.arange(n, dtype=np.int64)
    for simp_id, trad_id in pairs:
        traditional[simp_id] = trad_id
    return NameVocab(
        tokens=tuple(tokens),
        surnames=surname_ids,
        surname_p_local=(w * boost) / (w * boost).sum(),
        surname_p_other=w / w.sum(),
        given=given,
        given_all=given_all,
        homophones=homophones,
        homophone_count=counts,
        traditional=traditional,
    )


def all_vocabulary_text() -> str:
    """Every literal the generator may write (for the GBK check in the tests)."""
    parts = [
        SURNAMES,
        HOMOPHONES,
        TRADITIONAL,
        "".join(HANS_TO_HANT_ADDRESS.values()),
        "".join(m for m, _ in MINORITIES),
        ROAD_ROOTS,
        ROAD_DIRECTIONS,
        "".join(k for k, _ in ROAD_KINDS),
        COMPOUND_FIRST,
        COMPOUND_SECOND,
        "".join(k for k, _ in COMPOUND_KINDS + COMMERCIAL_KINDS),
        TRADE_CHARS,
        "".join(i + t for i, t, _ in INDUSTRIES),
        "".join(i + t for i, t in SHOPS),
        COOP_PRODUCTS,
        SOCIETY_TOPICS,
        SOCIETY_KINDS,
        NONPROFIT_KINDS,
        "".join(k for k, _, _ in SCHOOL_KINDS),
        PLACE_SYLLABLES,
        DIGITS_CN,
        *GIVEN.values(),
    ]
    return "".join(parts)
