from django.contrib import admin
from django.urls import path

from shop import views

urlpatterns = [path("order/<str:item>", views.order), path("admin/", admin.site.urls)]
