"""Words, hashtags, names, sources and languages the world's text is made of; ``tokenize``."""

from __future__ import annotations

import re
from functools import lru_cache


# --- vocabulary -----------------------------------------------------------------------
# Ordered by rank; weights are Zipf-like. "data" and "research" rank high on
# purpose so that searches for them always return many pages.
_WORDS = """
the to and a of in is for on this data that with it new we are be you our at research
from i my by about more how today science will your all great not can so have just one
an study what has work open now time learning out us people they paper team day as
project if some here was thanks know first see who get year like model but up help read
week public health climate world use analysis free live good best check network code
python join look find share need results via university information support report
news city students big school love back make really still thread policy energy women
power history future media social local life story global water make change think
always art music book books video post blog talk conference workshop deadline grant
funding lab field survey sample method methods theory evidence review journal preprint
dataset datasets model models training deep machine neural language text image images
map maps software tool tools library package release version update bug fix test tests
cloud server web app apps mobile phone design user users community event events summer
winter spring autumn morning night weekend coffee tea food lunch dinner home office
remote hybrid job jobs hiring career phd postdoc professor lecture course class exam
student teacher education learning reading writing draft submit submitted accepted
rejected published citation citations impact metric metrics trend trends growth rate
rates price prices market economy inflation budget tax vote election campaign government
law court rights justice freedom peace war border migration refugee housing transport
bike train bus car traffic road air pollution carbon emissions forest ocean river rain
heat storm flood drought fire species birds wildlife nature park garden plant plants
tree trees soil farm farmers crop crops genome gene genes cell cells protein virus
vaccine hospital patients doctor nurse care mental sleep exercise running football
soccer game games team season match goal player players coach fans stadium festival
film movie series episode podcast radio photo photos camera light space planet moon
star stars telescope galaxy physics chemistry biology math statistics survey chart
graph visualization dashboard pipeline scraping archive archives collection museum
""".split()
_RARE_WORDS = """
zeitgeist quokka serendipity petrichor halcyon mellifluous sonder limerence vellichor
apricity hiraeth susurrus defenestration kerfuffle brouhaha flummox gobbledygook lollygag
snollygoster widdershins bumfuzzle cattywampus taradiddle collywobbles skedaddle
hullabaloo nincompoop quixotic palimpsest syzygy zugzwang bioluminescence tessellation
axolotl pangolin narwhal capybara
""".split()
VOCABULARY: tuple[str, ...] = tuple(dict.fromkeys(_WORDS)) + tuple(_RARE_WORDS)


def _zipf_table(words: int, rare: int, size: int) -> tuple[int, ...]:
    """A ``size``-slot table of word indices, each common word's share ~1/(rank+2.7); rare words get one slot."""
    weights = [1.0 / (r + 2.7) for r in range(words)]
    room = size - rare
    total = sum(weights)
    slots = [max(1, int(w / total * room)) for w in weights]
    slots[0] += room - sum(slots)  # rounding remainder goes to "the"
    table = [i for i, n in enumerate(slots) for _ in range(n)] + list(range(words, words + rare))
    assert len(table) == size
    return tuple(table)


_N_COMMON = len(VOCABULARY) - len(_RARE_WORDS)
_WORD_TABLE: tuple[str, ...] = tuple(VOCABULARY[i] for i in _zipf_table(_N_COMMON, len(_RARE_WORDS), 65536))

HASHTAGS: tuple[str, ...] = (
    "DataScience", "OpenScience", "AI", "Python", "MachineLearning", "Research", "Climate",
    "AcademicTwitter", "PhD", "OpenData", "Science", "Rstats", "NLP", "Statistics", "BigData",
    "DeepLearning", "Astronomy", "Biology", "Health", "Elections", "Music", "Football", "Art",
    "Photography", "Travel", "Books", "Coffee", "MondayMotivation", "FridayFeeling", "TBT",
    "Startup", "Gaming", "Design", "Education", "CitizenScience", "DataViz", "Ecology",
)
_TAG_TABLE: tuple[str, ...] = tuple(
    t for r, t in enumerate(HASHTAGS) for _ in range(max(1, round(64 / (r + 1.5))))
)

_FIRST = (
    ("Anna", "Anna"), ("Ben", "Ben"), ("Carla", "Carla"), ("David", "David"), ("Emma", "Emma"),
    ("Farid", "Farid"), ("Grace", "Grace"), ("Hiro", "Hiro"), ("Ines", "Ines"), ("José", "Jose"),
    ("Kofi", "Kofi"), ("Lena", "Lena"), ("Maya", "Maya"), ("Noah", "Noah"), ("Olga", "Olga"),
    ("Pablo", "Pablo"), ("Quinn", "Quinn"), ("Rosa", "Rosa"), ("Sam", "Sam"), ("Tariq", "Tariq"),
    ("Uma", "Uma"), ("Victor", "Victor"), ("Wei", "Wei"), ("Ximena", "Ximena"), ("Yusuf", "Yusuf"),
    ("Zoë", "Zoe"), ("Søren", "Soren"), ("Chloé", "Chloe"), ("Łukasz", "Lukasz"), ("Aiko", "Aiko"),
    ("Priya", "Priya"), ("Mateo", "Mateo"), ("Amara", "Amara"), ("Leo", "Leo"), ("Nina", "Nina"),
    ("Omar", "Omar"), ("Sofia", "Sofia"), ("Ravi", "Ravi"), ("Elif", "Elif"), ("Jonas", "Jonas"),
)
_LAST = (
    ("Smith", "Smith"), ("García", "Garcia"), ("Kim", "Kim"), ("Müller", "Muller"), ("Okafor", "Okafor"),
    ("Rossi", "Rossi"), ("Tanaka", "Tanaka"), ("Nguyen", "Nguyen"), ("Silva", "Silva"), ("Novak", "Novak"),
    ("Khan", "Khan"), ("Dubois", "Dubois"), ("Larsen", "Larsen"), ("Cohen", "Cohen"), ("Patel", "Patel"),
    ("Ivanova", "Ivanova"), ("Mensah", "Mensah"), ("Lopez", "Lopez"), ("Chen", "Chen"), ("Brown", "Brown"),
    ("Yilmaz", "Yilmaz"), ("Kowalski", "Kowalski"), ("Haddad", "Haddad"), ("Sato", "Sato"), ("Reyes", "Reyes"),
)
_NOUNS = ("Data", "Lab", "News", "Code", "Maps", "Stats", "Bytes", "Notes", "Pixel", "Signal",
          "Field", "Atlas", "Orbit", "Daily", "Civic", "Green", "Open", "Moss", "River", "Cloud")
_EMOJI = (" 🌱", " 📊", " ✨", " 🔭", " 🧬", " ☕")
_ROLES = ("Researcher", "PhD student", "Data scientist", "Journalist", "Engineer", "Professor",
          "Writer", "Designer", "Developer", "Librarian", "Statistician", "Ecologist", "Teacher",
          "Photographer", "Nurse", "Policy analyst", "Archivist", "Student")
_LOCATIONS = ("Berlin", "New York, NY", "London", "Tokyo", "Paris", "São Paulo", "Lagos", "Mumbai",
              "Sydney", "Toronto", "Mexico City", "Madrid", "Nairobi", "Seoul", "Istanbul", "Oslo",
              "San Francisco, CA", "Buenos Aires", "Cape Town", "Earth", "somewhere online")
_SOURCES = (
    ("Twitter Web App", "https://mobile.twitter.com"),
    ("Twitter for iPhone", "http://twitter.com/download/iphone"),
    ("Twitter for Android", "http://twitter.com/download/android"),
    ("TweetDeck", "https://about.twitter.com/products/tweetdeck"),
    ("Buffer", "https://buffer.com"),
    ("IFTTT", "https://ifttt.com"),
)
_LANGS = (("en", 205), ("es", 15), ("fr", 12), ("ja", 8), ("und", 16))
_LANG_OF = tuple(code for code, w in _LANGS for _ in range(w))
assert len(_LANG_OF) == 256
_SOURCE_HTML = tuple(f'<a href="{url}" rel="nofollow">{name}</a>' for name, url in _SOURCES)


_URL_RE = re.compile(r"https?://\S+")
_TOKEN_RE = re.compile(r"[a-z0-9_]+")
_B62 = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


@lru_cache(maxsize=4096)
def _tag_strings(tags: tuple[str, ...]) -> tuple[str, str]:
    """(" tag1 tag2", " #tag1 #tag2") in lowercase: a search line's hashtag tokens and keys."""
    low = [t.lower() for t in tags]
    return "".join(" " + t for t in low), "".join(" #" + t for t in low)


def tokenize(text: str) -> list[str]:
    """The word tokens search matches: lowercase ``[a-z0-9_]+`` runs, URLs removed.

    ``#DataScience`` yields ``datascience`` and ``@jack`` yields ``jack``.
    """
    return _TOKEN_RE.findall(_URL_RE.sub(" ", text.lower()))


_B62_PAIRS = tuple(_B62[r % 62] + _B62[r // 62] for r in range(62 * 62))


def _b62(h: int, n: int) -> str:
    """The ``n`` least significant base-62 digits of ``h``, least significant first."""
    out = []
    for _ in range(n >> 1):
        h, r = divmod(h, 3844)
        out.append(_B62_PAIRS[r])
    if n & 1:
        out.append(_B62[h % 62])
    return "".join(out)
