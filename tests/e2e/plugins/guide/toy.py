# The user guide, "Plugin Extension" > "Delegation".
from gofer.decorators import *
from gofer.agent.plugin import Plugin

# import Dog from animals plugin

animals = Plugin.find('animals')
Dog = animals['Dog']

# Old McDonald toy
class Toy:
   @remote
   def theDog(self):
       dog = Dog()
       dog.bark()
