"""Search pages: find an ID (the navbar search and its page) and the QC search with downloads."""

import logging

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.functional import cached_property
from django.views.decorators.http import require_GET

from qc import exports, search
from qc.search_forms import QCSearchForm

logger = logging.getLogger(__name__)

QC_SEARCH_PER_PAGE = 50
# The QC search counts its matches up to this number. Past it the page shows "10000+" and lists
# the first 10,000, because an exact COUNT over every scan of a large archive is slow.
QC_SEARCH_COUNT_LIMIT = 10000
EXPORT_CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "json": "application/json",
}


@login_required
@require_GET
def search_page(request):
    query = request.GET.get("q", "")
    results = search.search(request.user, query)
    return render(
        request,
        "qc/search/search.html",
        {"results": results, "searched": "q" in request.GET},
    )


@login_required
@require_GET
def search_suggest(request):
    """Render the results fragment of the navbar dropdown."""
    results = search.search(request.user, request.GET.get("q", ""))
    return render(request, "qc/search/_results.html", {"results": results, "compact": True})


class CappedCountPaginator(Paginator):
    """A Paginator that counts at most `count_limit` rows and sets `count_capped` past it."""

    count_limit = QC_SEARCH_COUNT_LIMIT
    count_capped = False

    @cached_property
    def count(self):
        # values("pk") leaves out the annotations that no filter uses, and order_by() the sort,
        # which a capped count does not need.
        counted = self.object_list.values("pk").order_by()[: self.count_limit + 1].count()
        self.count_capped = counted > self.count_limit
        return min(counted, self.count_limit)


def _filter_form(request):
    return QCSearchForm(request.GET or None, user=request.user)


@login_required
@require_GET
def qc_search(request):
    form = _filter_form(request)
    page = None
    if form.is_bound and form.is_valid():
        filters = form.filters()
    elif not form.is_bound:
        filters = search.QCFilters()
    else:
        filters = None
    if filters is not None:
        items = search.qc_search(request.user, filters)
        paginator = CappedCountPaginator(items, QC_SEARCH_PER_PAGE)
        page = paginator.get_page(request.GET.get("page"))
        page.rows = [search.qc_row(item) for item in page.object_list]
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "qc/search/qc_search.html",
        {
            "form": form,
            "page": page,
            "filters": filters,
            "query_string": query.urlencode(),
        },
    )


@login_required
@require_GET
def qc_search_export(request, export_format):
    """Download the QC search result as filtered, streamed in chunks of rows."""
    form = _filter_form(request)
    if form.is_bound and not form.is_valid():
        return render(
            request,
            "qc/search/qc_search.html",
            {"form": form, "page": None, "filters": None, "query_string": ""},
            status=400,
        )
    filters = form.filters() if form.is_bound else search.QCFilters()
    rows = search.qc_export_rows(request.user, filters, chunk_size=exports.ITERATOR_CHUNK_SIZE)
    if export_format == "csv":
        chunks = exports.csv_chunks(search.QC_ROW_COLUMNS, rows, neutralise_formulas=True)
    else:
        chunks = exports.json_array_chunks(rows)

    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    response = StreamingHttpResponse(chunks, content_type=EXPORT_CONTENT_TYPES[export_format])
    response["Content-Disposition"] = f'attachment; filename="qc-search-{stamp}.{export_format}"'
    logger.info("QC search export (%s, mode %s) by %s", export_format, filters.mode, request.user)
    return response
