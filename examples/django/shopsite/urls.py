from django.contrib import admin
from django.urls import path
from orders import views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("orders/<str:item>", views.place_order),
    path("orders/<str:item>/refused", views.refuse_order),
]
