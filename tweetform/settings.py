"""Scrapy settings for tweetform: every default in one place.

Override them in ``settings_local.py`` (see ``settings_local.py.example``, which
documents each option) or with environment variables of the same name.
"""

from scrapy.settings import default_settings as _scrapy_defaults

BOT_NAME = "tweetform"
SPIDER_MODULES = ["tweetform.spiders"]
NEWSPIDER_MODULE = "tweetform.spiders"
COMMANDS_MODULE = "tweetform.commands"

# --- Scrapy behaviour ---------------------------------------------------------
ROBOTSTXT_OBEY = False  # an API, not a website
COOKIES_ENABLED = False
REFERER_ENABLED = False  # an API: a Referer header is noise (and bytes in every queued request)
TELNETCONSOLE_ENABLED = False
REMOTE_CONTROL_ENABLED = False  # Scrapy 2.19's remote-control endpoint runs code on request
# Off is not enough to skip their import: Scrapy 2.19 imports every entry of EXTENSIONS and DOWNLOADER_MIDDLEWARES
# (None ones too, to deduplicate them) on every crawl start, and the remote control's module imports aiohttp's client
# and server (~70 ms of CPU), the cookies middleware's tldextract and requests (~20 ms). So these three are left out
# of Scrapy's base lists (bench/startup_bench.py, tests/test_startup.py); COOKIES_ENABLED = True would need the
# cookies middleware back in DOWNLOADER_MIDDLEWARES.
_NEVER_LOADED = ("scrapy.extensions.remote_control.RemoteControl", "scrapy.extensions.telnet.TelnetConsole",
                 "scrapy.downloadermiddlewares.cookies.CookiesMiddleware")
EXTENSIONS_BASE = {k: v for k, v in _scrapy_defaults.EXTENSIONS_BASE.items() if k not in _NEVER_LOADED}
DOWNLOADER_MIDDLEWARES_BASE = {k: v for k, v in _scrapy_defaults.DOWNLOADER_MIDDLEWARES_BASE.items() if k not in _NEVER_LOADED}
LOG_LEVEL = "INFO"
USER_AGENT = "tweetform/0.1 (+research crawler)"
DEFAULT_REQUEST_HEADERS = {"Accept": "application/json"}
CONCURRENT_REQUESTS = 32
CONCURRENT_REQUESTS_PER_DOMAIN = 32  # every request goes to one API host
CONCURRENT_ITEMS = 1  # a page yields one item: Scrapy's 100 parallel item tasks per response cost ~3 ms CPU (bench/)
DOWNLOAD_TIMEOUT = 60
URLLENGTH_LIMIT = 16384  # 100-id look-ups with all fields exceed Scrapy's 2,083
# 429s are not errors to retry: ApiErrorMiddleware waits for the window's reset instead
RETRY_HTTP_CODES = [500, 502, 503, 504, 522, 524, 408]
RETRY_TIMES = 4
HTTPERROR_ALLOW_ALL = False  # API requests opt in with meta handle_httpstatus_all

METAREFRESH_ENABLED = False  # an API answers JSON, never an HTML meta refresh
DOWNLOADER_MIDDLEWARES = {
    # Scrapy's, minus its start-up warning that no RefererMiddleware handles Referer headers (there is none on purpose)
    "scrapy.downloadermiddlewares.redirect.RedirectMiddleware": None,
    "tweetform.middlewares.redirect.ApiRedirectMiddleware": 600,
    "tweetform.middlewares.pacing.PacingMiddleware": 545,
    "tweetform.middlewares.signing.SigningMiddleware": 800,
    "tweetform.middlewares.api_errors.ApiErrorMiddleware": 810,
}
# requests wait for rate-limit quota in the scheduler, one queue per endpoint
SCHEDULER_PRIORITY_QUEUE = "tweetform.state.local.priority_queue.QuotaAwarePriorityQueue"
# JOBDIR (resumable local jobs): queue rows leased until acknowledged, dupe filter and job state in one
# SQLite file (tweetform/state/local/); requests stored without credentials (signed again per attempt)
SCHEDULER = "tweetform.state.local.scheduler.LocalScheduler"
SCHEDULER_DISK_QUEUE = "tweetform.state.local.queue.LeasedSqliteQueue"
SCHEDULER_START_DISK_QUEUE = "tweetform.state.local.queue.LeasedSqliteFifoQueue"
DUPEFILTER_CLASS = "tweetform.state.local.dupefilter.JobDirDupeFilter"
# outermost (Scrapy's own start at StartSpiderMiddleware, 25): an exception from a callback, or from any spider
# middleware's handling of its output, becomes a failed page in the errors bucket, and the crawl goes on. Only
# collect mode's CollectMiddleware (10) wraps it, so the failed-page records it makes reach Redis in the chain too
SPIDER_MIDDLEWARES = {
    "tweetform.middlewares.callback_errors.CallbackErrorMiddleware": 20,
}
ITEM_PIPELINES = {
    "tweetform.pipelines.buckets.BucketPipeline": 500,
}

# --- tweetform ------------------------------------------------------------------
TWEETFORM_API_BASE = "https://api.twitter.com"
TWEETFORM_API_VERSION = "2"
# Bluesky (-a api=bluesky): the AppView for public reads, the PDS for sessions and authenticated calls
TWEETFORM_BLUESKY_APPVIEW = "https://public.api.bsky.app"
TWEETFORM_BLUESKY_PDS = "https://bsky.social"
TWEETFORM_BLUESKY_RATE = 3000  # requests per 5 minutes per IP when a host sends no ratelimit-* headers
TWEETFORM_DIRECT_LANE = ""  # this host's IP lane without proxies ("": the host name); hosts behind one NAT: one name
TWEETFORM_CREDENTIALS: list = []
TWEETFORM_CREDENTIALS_FILE = ""
TWEETFORM_OUTPUT_DIR = "data"
TWEETFORM_QUOTA_RESET_MARGIN = 1.0  # seconds past x-rate-limit-reset before a window counts as renewed
TWEETFORM_APP_LANES_FOR_USERS = False  # also spend user credentials' app-only quota (their app's bearer token)
TWEETFORM_RETRY_BACKOFF = 1.0  # seconds before the first retry, doubled each time
TWEETFORM_RETRY_BACKOFF_MAX = 60.0

# --- proxies (scrapy-rotating-proxies with an API-aware ban policy; docs/proxies.md) ---
DOWNLOADER_MIDDLEWARES.update({
    "tweetform.proxies.middlewares.RotatingProxyMiddleware": 610,  # off when no proxy is configured
    "tweetform.proxies.middlewares.BanDetectionMiddleware": 820,  # sees answers and failures before ApiErrorMiddleware
})
ROTATING_PROXY_LIST: list = []
ROTATING_PROXY_LIST_PATH = ""
ROTATING_PROXY_BAN_POLICY = "tweetform.proxies.policy.ApiBanPolicy"
ROTATING_PROXY_BACKOFF_BASE = 300.0  # seconds; a dead proxy is tried again after up to base * 2**failures (jittered)
ROTATING_PROXY_BACKOFF_CAP = 3600.0
ROTATING_PROXY_PAGE_RETRY_TIMES = 5  # proxies tried for one request before it counts as a page failure
ROTATING_PROXY_CLOSE_SPIDER = False  # all proxies dead: False tries them all again, True stops the crawl
ROTATING_PROXY_LOGSTATS_INTERVAL = 30.0
TWEETFORM_PROXY_FILE = ""  # tweetf0rm's proxy.json
TWEETFORM_CREDENTIAL_PROXIES: dict = {}  # {"alias": "host:port" or ["host:port", ...]}: pinning
TWEETFORM_PROXY_CHECK_AT_START = False  # check every proxy before the first request; failures start dead
TWEETFORM_PROXY_CHECK_TIMEOUT = 10.0
TWEETFORM_PROXY_CHECK_PATH = "/1.1/application/rate_limit_status.json"

# --- research tools: progress, archiving, planning ------------------------------
EXTENSIONS = {"tweetform.progress.ProgressExtension": 500,
              "tweetform.manifest.ManifestExtension": 510}  # <output>/_jobs/<job>.json for the job a crawl starts
TWEETFORM_OUTPUT_COMPRESS = False  # write <key>.jsonl.gz (one gzip member per page) instead of <key>.jsonl
TWEETFORM_PROGRESS = "auto"  # auto: a live line on a terminal, log lines otherwise; or bar, log, off
TWEETFORM_PROGRESS_INTERVAL = 30.0  # seconds between progress log lines when not on a terminal
TWEETFORM_RATE_LIMITS: dict = {}  # scrapy plan: overrides of the one limits table (tweetform/api/limits.py, 2026), {"/friends/ids": [15, 15]}
TWEETFORM_RATE_WINDOW = 900.0  # scrapy plan: seconds in one rate-limit window

# --- cost: pay-per-use accounting and budgets (tweetform/cost/; README "Cost") --------
# each page is charged by the billing rule; a job's budget is reserved page by page before sending
SPIDER_MIDDLEWARES["tweetform.cost.middleware.CostMiddleware"] = 900
DOWNLOADER_MIDDLEWARES["tweetform.cost.budget.BudgetMiddleware"] = 815  # sees answers before ApiErrorMiddleware
# a job's budget in US dollars when it gives none (-a budget=USD, push --budget): no job runs without one
# unless it says so with "unlimited" (tweetform.cost.DEFAULT_BUDGET_USD; a string, so "unlimited" is a value)
TWEETFORM_BUDGET_USD = "5"
TWEETFORM_CONTINUE = ""  # set by scrapy crawl: the command that continues its job after a stop (its stop lines say it)
TWEETFORM_PRICES_USD: dict = {}  # overrides of the price table (tweetform/api/pricing.py), {"post": 0.005}

# --- the filtered stream (scrapy crawl stream; tweetform/stream/) ----------------------
TWEETFORM_STREAM_READ_TIMEOUT = 30.0  # seconds of silence (no post, no keep-alive: the API sends one every 20 s) before reconnecting

# --- distributed mode (scrapy-redis) ------------------------------------------
REDIS_URL = ""
ADDONS = {"tweetform.addons.DistributedAddon": 100}  # switches on with REDIS_URL; holds what each crawler shares (crawler_state.py)
TWEETFORM_HEARTBEAT = 2.0  # seconds between a worker's heartbeats
TWEETFORM_HEARTBEAT_TTL = 10.0  # a worker silent this long is dead: its in-flight work goes back
TWEETFORM_EXIT_WHEN_IDLE = False  # workers wait for more jobs; True: exit when nothing is left
TWEETFORM_MAX_DELIVERIES = 5  # a request handed over this often (its workers died or stalled) is dead-lettered
TWEETFORM_DEAD_LETTER_MAX = 10000  # entries kept in each dead-letter list (the oldest go)
TWEETFORM_JOB_STATE_TTL = 7 * 24 * 3600.0  # seconds a done or cancelled job's dupe filter, claims and levels stay in Redis
TWEETFORM_COLLECT = False  # workers hand pages to `scrapy collect` through Redis instead of writing them
TWEETFORM_COLLECT_MAX_BYTES = 64_000_000  # per job: pages waiting in Redis beyond this make workers wait
TWEETFORM_COLLECT_LOCK_TTL = 10.0  # seconds: the collector lock lapses this long after its holder stops refreshing it

from tweetform.config import apply_overrides  # noqa: E402

apply_overrides(globals())
