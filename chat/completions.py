"""POST /api/v1/chat/completions — being written (placeholder so the URL map imports)."""

from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt


@csrf_exempt
async def chat_completions(request):
    return JsonResponse({"code": 501, "statusText": "notImplemented", "message": "", "data": None}, status=501)
