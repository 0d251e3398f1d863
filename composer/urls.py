app_name = "composer"
urlpatterns = []
